//! filc's side of an etcd operation fild runs: start it, print its lines as they come (long
//! polls of `GET /v1/etcd/ops/{id}`), and at a terminal ask before a destructive plan goes on.
//! Closing filc stops nothing: the operation is fild's; `filc etcd ops --follow ID` re-attaches.

use std::io::{BufRead, IsTerminal, Write};

use super::client::{Client, ClientError};
use crate::api::{EtcdOp, EtcdOpRequest, EtcdOpState};

/// How long one follow request waits for a line (fild caps it at 30 s).
const WAIT_SECS: u64 = 10;

/// The exit code of an operation's end: 0 done or planned, 1 otherwise.
pub fn exit_code(state: EtcdOpState) -> u8 {
    match state {
        EtcdOpState::Succeeded | EtcdOpState::Planned => 0,
        _ => 1,
    }
}

/// Print `line` and flush: steps appear as they happen, even through a pipe.
fn print(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is no reason to stop following: fild runs it either way.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Print the lines of operation `op` from `from` on, until it ends; its last view.
pub async fn follow(c: &Client, mut op: EtcdOp) -> Result<EtcdOp, ClientError> {
    loop {
        for l in &op.lines {
            print(&l.text);
        }
        let from = op.from + op.lines.len();
        if op.state != EtcdOpState::Running && from >= op.total_lines {
            return Ok(op);
        }
        op = c.op(op.id, from, WAIT_SECS).await?;
    }
}

/// Ask at the terminal; false when there is none.
fn confirm(question: &str) -> bool {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return false;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Run `req` inside fild and follow it; at a terminal, an unconfirmed plan is asked about
/// and, if confirmed, run again naming the plan's digest (fild asks again if it changed).
pub async fn run(c: &Client, mut req: EtcdOpRequest) -> anyhow::Result<u8> {
    loop {
        let op = c.start_op(&req).await?;
        print(&format!(
            "operation {} runs inside fild (interrupting filc does not stop it; follow it again: filc etcd ops --follow {})",
            op.id, op.id
        ));
        let end = end_of(c, op).await?;
        if end.state == EtcdOpState::Unconfirmed
            && let Some(digest) = end.digest.clone()
            && confirm("Carry out this plan?")
        {
            req.confirm = Some(digest);
            continue;
        }
        return Ok(report(&end));
    }
}

/// Re-attach to operation `id`: everything it said, then what it says until it ends.
pub async fn reattach(c: &Client, id: u64) -> anyhow::Result<u8> {
    let op = c.op(id, 0, 0).await?;
    let end = end_of(c, op).await?;
    Ok(report(&end))
}

async fn end_of(c: &Client, op: EtcdOp) -> anyhow::Result<EtcdOp> {
    let id = op.id;
    follow(c, op).await.map_err(|e| {
        anyhow::anyhow!(
            "lost fild while following operation {id}: {e}. Once fild is back, `filc etcd ops` shows how it ended (a re-run of the same command finishes it)"
        )
    })
}

/// Say how it ended (on stderr, as errors are) and give its exit code.
fn report(op: &EtcdOp) -> u8 {
    match (op.state, &op.error) {
        // What it made (a snapshot's path) is the last line, for scripts.
        (EtcdOpState::Succeeded, _) => {
            if let Some(out) = &op.output {
                print(out);
            }
        }
        (EtcdOpState::Planned, _) => eprintln!("dry run: nothing changed"),
        (_, Some(e)) => eprintln!("filc: operation {} {}: {e}", op.id, op.state.as_str()),
        (_, None) => eprintln!("filc: operation {} {}", op.id, op.state.as_str()),
    }
    exit_code(op.state)
}

/// `filc etcd ops`: one line an operation, newest last.
pub fn table(ops: &[EtcdOp]) -> String {
    let mut out = String::new();
    for o in ops {
        let when = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(o.started_unix),
        );
        out.push_str(&format!(
            "{:>4}  {:<11}  {when}  {:>4} lines  {}\n",
            o.id,
            o.state.as_str(),
            o.total_lines,
            o.title
        ));
        if matches!(o.state, EtcdOpState::Interrupted)
            && let Some(e) = &o.error
        {
            out.push_str(&format!("      {e}\n"));
        }
    }
    out
}
