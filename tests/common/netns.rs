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

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
