//! Test hosts made of network namespaces: three hosts on a bridge in a fourth "switch"
//! namespace. Used by the mode-two test and the fault suite's partition case.

use std::process::Command;

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One network namespace of the test's own, with only loopback (up): default ports and
/// 127.0.0.1 inside it touch nothing outside. Deleted on drop.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(prefix: &str) -> Ns {
        let name = format!("{prefix}{}", std::process::id() % 100_000);
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        Ns { name }
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Three (or more) host namespaces wired to a bridge in a fourth "switch" namespace, which also has an
/// address of its own (.100) for the test's clients; deleted on drop. Addresses from the
/// benchmarking range 198.18.0.0/15: nothing touches the real network.
pub struct Net {
    pub id: u32,
    prefix: String,
    pub hosts: Vec<String>,
    pub switch: String,
}

impl Net {
    /// `prefix` keeps the names of different suites apart (interface names stay short).
    pub fn new(prefix: &str) -> Net {
        Net::with_hosts(prefix, 3)
    }

    /// [`Net::new`] with `count` hosts (a fourth: a new host a member moves to).
    pub fn with_hosts(prefix: &str, count: usize) -> Net {
        let id = std::process::id() % 100_000;
        let switch = format!("{prefix}sw{id}");
        let hosts: Vec<String> = (0..count).map(|n| format!("{prefix}h{id}-{n}")).collect();
        let net = Net {
            id,
            prefix: prefix.to_string(),
            hosts: hosts.clone(),
            switch: switch.clone(),
        };
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "set", "lo", "up"]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &switch,
            "addr",
            "add",
            &format!("{}/24", net.client_addr()),
            "dev",
            "br0",
        ]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for (n, h) in hosts.iter().enumerate() {
            ip(&["netns", "add", h]);
            ip(&["-n", h, "link", "set", "lo", "up"]);
            let sw_end = format!("{prefix}s{id}h{n}");
            ip(&[
                "-n", h, "link", "add", "eth0", "type", "veth", "peer", "name", &sw_end, "netns",
                &switch,
            ]);
            ip(&[
                "-n",
                h,
                "addr",
                "add",
                &format!("{}/24", net.addr(n)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", h, "link", "set", "eth0", "up"]);
            ip(&["-n", &switch, "link", "set", &sw_end, "master", "br0"]);
            ip(&["-n", &switch, "link", "set", &sw_end, "up"]);
        }
        net
    }

    pub fn addr(&self, n: usize) -> String {
        format!("198.18.{}.{}", self.id % 250, n + 1)
    }

    pub fn client_addr(&self) -> String {
        format!("198.18.{}.100", self.id % 250)
    }

    /// Member n's client endpoint (the kit's default port on its host's address).
    pub fn endpoint(&self, n: usize) -> String {
        format!("{}:{}", self.addr(n), 2079 + 100 * n)
    }

    /// Cut or restore host `n`'s link.
    pub fn link(&self, n: usize, up: bool) {
        let sw_end = format!("{}s{}h{n}", self.prefix, self.id);
        ip(&[
            "-n",
            &self.switch,
            "link",
            "set",
            &sw_end,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Net {
    /// Cut host `n` off from the other hosts for every packet but TCP to or from `keep_port`
    /// (the filds' control port), or lift that (`on` false): egress filters on each host's
    /// eth0 (an htb class ending in a blackhole qdisc). Unlike a link cut, it can stay on
    /// while the filds talk, so a dead member's last unacknowledged segments (which the
    /// kernel goes on retransmitting after the process is gone) never arrive.
    pub fn isolate(&self, n: usize, keep_port: u16, on: bool) {
        for (h, ns) in self.hosts.iter().enumerate() {
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root",
                ])
                .stderr(std::process::Stdio::null())
                .status();
            if !on {
                continue;
            }
            let drop_to: Vec<String> = if h == n {
                (0..3).filter(|m| *m != n).map(|m| self.addr(m)).collect()
            } else {
                vec![self.addr(n)]
            };
            let tc = |args: &[&str]| {
                let out = Command::new("ip")
                    .args(["netns", "exec", ns, "tc"])
                    .args(args)
                    .output()
                    .expect("run tc");
                assert!(
                    out.status.success(),
                    "tc {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            tc(&[
                "qdisc", "add", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10",
            ]);
            for class in ["1:10", "1:20"] {
                tc(&[
                    "class", "add", "dev", "eth0", "parent", "1:", "classid", class, "htb", "rate",
                    "10gbit",
                ]);
            }
            tc(&[
                "qdisc",
                "add",
                "dev",
                "eth0",
                "parent",
                "1:20",
                "handle",
                "20:",
                "blackhole",
            ]);
            let port = keep_port.to_string();
            for dir in ["sport", "dport"] {
                tc(&[
                    "filter", "add", "dev", "eth0", "parent", "1:", "protocol", "ip", "prio", "1",
                    "u32", "match", "ip", dir, &port, "0xffff", "flowid", "1:10",
                ]);
            }
            for a in &drop_to {
                tc(&[
                    "filter",
                    "add",
                    "dev",
                    "eth0",
                    "parent",
                    "1:",
                    "protocol",
                    "ip",
                    "prio",
                    "2",
                    "u32",
                    "match",
                    "ip",
                    "dst",
                    &format!("{a}/32"),
                    "flowid",
                    "1:20",
                ]);
            }
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
