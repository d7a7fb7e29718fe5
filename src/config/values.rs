//! Typed value parsers: sizes, booleans, signals, octal modes and the small value grammars of
//! program keys. Each returns a [`Problem`] (message plus optional fix-it hint) on bad input;
//! the caller attaches file, line, section and key.

use super::model::{AutoRestart, ClusterHost, Password, StartRetries};

/// What is wrong with one value, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<String> for Problem {
    fn from(message: String) -> Self {
        Problem::new(message)
    }
}

/// The longest time any duration in the configuration may be: ten years. Every timer adds a
/// configured time to now; bounding each where it is parsed keeps that arithmetic far from
/// overflow (and no operator means more).
pub const MAX_SECS: u64 = 10 * 365 * 86_400;

/// The most rotated files one log may keep (each rotation renames them all).
pub const MAX_BACKUPS: u32 = 1000;

/// A whole number of seconds, at most [`MAX_SECS`].
pub(crate) fn seconds(s: &str) -> Result<u64, Problem> {
    let n: u64 = integer(s)?;
    if n > MAX_SECS {
        return Err(Problem::new(format!("{s} seconds is too long"))
            .hint(format!("use at most {MAX_SECS} seconds (ten years)")));
    }
    Ok(n)
}

/// How many rotated log files to keep, at most [`MAX_BACKUPS`].
pub(crate) fn backups(s: &str) -> Result<u32, Problem> {
    match integer::<u32>(s) {
        Ok(n) if n <= MAX_BACKUPS => Ok(n),
        Ok(_) => Err(Problem::new(format!("{s} backups is too many"))
            .hint(format!("keep at most {MAX_BACKUPS} rotated files"))),
        Err(_) => Err(Problem::new(format!("invalid number '{s}'"))
            .hint(format!("use a whole number from 0 to {MAX_BACKUPS}"))),
    }
}

const SIZE_HINT: &str = "use a byte count or a KB/MB/GB suffix, e.g. 50MB";

/// A byte size: bare digits, or digits followed by K/KB/M/MB/G/GB in any case (1024-based).
pub(crate) fn size(s: &str) -> Result<u64, Problem> {
    let bad = || Problem::new(format!("invalid size '{s}'")).hint(SIZE_HINT);
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad());
    }
    let multiplier: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(multiplier)
        .ok_or_else(|| Problem::new(format!("size '{s}' is too large")))
}

/// `true/false/yes/no/on/off/1/0`, case-insensitive.
pub(crate) fn boolean(s: &str) -> Result<bool, Problem> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(Problem::new(format!("invalid boolean '{s}'"))
            .hint("use true or false (yes/no, on/off and 1/0 also work)")),
    }
}

/// A non-negative (or signed, per `T`) decimal integer.
pub(crate) fn integer<T: std::str::FromStr>(s: &str) -> Result<T, Problem> {
    s.parse().map_err(|_| {
        Problem::new(format!("invalid number '{s}'")).hint("use a plain decimal integer")
    })
}

/// A decimal integer within `lo..=hi`.
pub(crate) fn within(s: &str, lo: u64, hi: u64) -> Result<u64, Problem> {
    let n: u64 = integer(s)?;
    if !(lo..=hi).contains(&n) {
        return Err(Problem::new(format!("{n} is out of range"))
            .hint(format!("use a number from {lo} to {hi}")));
    }
    Ok(n)
}

/// A duration (see [`duration`]) within `lo..=hi`.
pub(crate) fn duration_within(
    s: &str,
    lo: std::time::Duration,
    hi: std::time::Duration,
) -> Result<std::time::Duration, Problem> {
    let d = duration(s)?;
    if !(lo..=hi).contains(&d) {
        return Err(Problem::new(format!("{s:?} is out of range")).hint(format!(
            "use from {} to {}",
            humantime::format_duration(lo),
            humantime::format_duration(hi)
        )));
    }
    Ok(d)
}

/// An octal mode such as `022`, `0700` or `0o600`, at most `max`.
pub(crate) fn octal(s: &str, max: u32) -> Result<u32, Problem> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let bad = || {
        Problem::new(format!("invalid octal mode '{s}'"))
            .hint(format!("use octal digits up to {max:o}, e.g. 0600"))
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    match u32::from_str_radix(digits, 8) {
        Ok(v) if v <= max => Ok(v),
        _ => Err(bad()),
    }
}

/// `true/false/unexpected` (every boolean spelling is accepted for the first two).
pub(crate) fn autorestart(s: &str) -> Result<AutoRestart, Problem> {
    if s.eq_ignore_ascii_case("unexpected") {
        return Ok(AutoRestart::Unexpected);
    }
    match boolean(s) {
        Ok(true) => Ok(AutoRestart::Always),
        Ok(false) => Ok(AutoRestart::Never),
        Err(_) => Err(Problem::new(format!("invalid autorestart '{s}'"))
            .hint("use true, false or unexpected")),
    }
}

/// A non-negative integer or `forever`.
pub(crate) fn startretries(s: &str) -> Result<StartRetries, Problem> {
    if s.eq_ignore_ascii_case("forever") {
        return Ok(StartRetries::Forever);
    }
    s.parse().map(StartRetries::Count).map_err(|_| {
        Problem::new(format!("invalid startretries '{s}'"))
            .hint("use a non-negative integer or forever")
    })
}

/// A comma list of exit codes, each 0..=255.
pub(crate) fn exitcodes(s: &str) -> Result<Vec<i32>, Problem> {
    let hint = "use a comma list of exit codes 0-255, e.g. 0,2";
    let mut codes = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.parse::<i32>() {
            Ok(c) if (0..=255).contains(&c) => codes.push(c),
            _ => return Err(Problem::new(format!("invalid exit code '{item}'")).hint(hint)),
        }
    }
    if codes.is_empty() {
        return Err(Problem::new("no exit codes given").hint(hint));
    }
    Ok(codes)
}

/// Standard Linux signal names (without the `SIG` prefix) and their numbers.
/// Names supervisord accepts that nix's `Signal` does not spell: the aliases.
const SIGNAL_ALIASES: &[(&str, &str)] = &[("IOT", "ABRT"), ("POLL", "IO"), ("CLD", "CHLD")];

/// Highest signal number accepted in numeric form (Linux `SIGRTMAX`).
const MAX_SIGNAL: i32 = 64;

/// A signal name (`TERM`, `SIGTERM`, `term`) or number (1..=64).
pub(crate) fn signal(s: &str) -> Result<i32, Problem> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=MAX_SIGNAL).contains(&n) {
            return Ok(n);
        }
    } else {
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        let name = SIGNAL_ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, real)| real);
        if let Ok(sig) = format!("SIG{name}").parse::<nix::sys::signal::Signal>() {
            return Ok(sig as i32);
        }
    }
    Err(Problem::new(format!("invalid signal '{s}'"))
        .hint("use a signal name such as TERM, INT, QUIT, HUP, KILL, USR1 or a number"))
}

/// A whitespace-separated list of signals, sent in turn (e.g. `INT TERM`).
pub(crate) fn signals(s: &str) -> Result<Vec<i32>, Problem> {
    let list = s
        .split_whitespace()
        .map(signal)
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err(Problem::new("no signal given").hint("e.g. stopsignal=TERM"));
    }
    Ok(list)
}

/// Log levels accepted by `[supervisord] loglevel`.
const LOGLEVELS: &[&str] = &[
    "critical", "error", "warn", "info", "debug", "trace", "blather",
];

/// A log level, lower-cased.
pub(crate) fn loglevel(s: &str) -> Result<String, Problem> {
    let lower = s.to_ascii_lowercase();
    if LOGLEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(Problem::new(format!("invalid loglevel '{s}'"))
            .hint(format!("use one of {}", LOGLEVELS.join(", "))))
    }
}

/// A password: plain, or `{SHA}` followed by 40 hex digits.
pub(crate) fn password(s: &str) -> Result<Password, Problem> {
    let Some(hex) = s.strip_prefix("{SHA}") else {
        return Ok(Password::Plain(s.to_string()));
    };
    if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Password::Sha1Hex(hex.to_ascii_lowercase()))
    } else {
        Err(
            Problem::new("a {SHA} password must be followed by 40 hex digits")
                .hint("generate one with: printf %s PASSWORD | sha1sum"),
        )
    }
}

/// `user[:group]`.
pub(crate) fn chown(s: &str) -> Result<(String, Option<String>), Problem> {
    let (user, group) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    if user.is_empty() || group.is_some_and(str::is_empty) {
        return Err(Problem::new(format!("invalid chown '{s}'")).hint("use user or user:group"));
    }
    Ok((user.to_string(), group.map(str::to_string)))
}

/// `host:port`, `*:port` or `:port`.
pub(crate) fn host_port(s: &str) -> Result<String, Problem> {
    let ok = s
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(s.to_string())
    } else {
        Err(Problem::new(format!("invalid port '{s}'")).hint("use host:port, e.g. 127.0.0.1:9001"))
    }
}

/// `[cluster] hosts`: `http://host:port` URLs or `name=http://host:port` pairs, separated by
/// whitespace or commas; `own` (this fild's `[inet_http_server] port`) marks this host's entry.
pub(crate) fn cluster_hosts(s: &str, own: Option<&str>) -> Result<Vec<ClusterHost>, Problem> {
    let hint = "list every host's fild as http(s)://host:port or name=http(s)://host:port, e.g. hosts=h0=https://10.0.0.1:9001 h1=https://10.0.0.2:9001";
    let mut hosts: Vec<ClusterHost> = Vec::new();
    for item in s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|i| !i.is_empty())
    {
        let (name, url) = match item.split_once('=') {
            Some((n, u)) => (Some(n), u),
            None => (None, item),
        };
        if let Some(n) = name
            && (n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(Problem::new(format!("invalid host name '{n}' in '{item}'")).hint(hint));
        }
        let (scheme, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => ("http", rest),
            (_, Some(rest)) => ("https", rest),
            _ => {
                return Err(
                    Problem::new(format!("'{url}' is not an http(s)://host:port URL")).hint(hint),
                );
            }
        };
        let hp = rest.trim_end_matches('/');
        let valid = hp.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty()
                && !h.contains('/')
                && !h.contains('@')
                && p.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(Problem::new(format!(
                "'{url}' is not an http(s)://host:port URL (a host and a port, nothing else)"
            ))
            .hint(hint));
        }
        let name = name.map_or_else(|| hp.to_string(), str::to_string);
        if hosts.iter().any(|h| h.name == name) {
            return Err(Problem::new(format!("host '{name}' is listed twice")).hint(hint));
        }
        if hosts
            .iter()
            .any(|h| h.url.split_once("://").map(|x| x.1) == Some(hp))
        {
            return Err(Problem::new(format!("'{url}' is listed twice")).hint(hint));
        }
        hosts.push(ClusterHost {
            name,
            url: format!("{scheme}://{hp}"),
            own: own.is_some_and(|o| o == hp),
        });
    }
    if hosts.is_empty() {
        return Err(Problem::new("no host listed").hint(hint));
    }
    Ok(hosts)
}

/// Parse `KEY=val,KEY2="quoted, may hold commas",KEY3='single'` (items may also be separated by
/// newlines). Values are returned unexpanded, with their quotes removed.
pub(crate) fn environment(s: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut items = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            return Ok(items);
        }
        let (item, after) = environment_item(rest)?;
        items.push(item);
        rest = after;
    }
}

fn bad_environment_item(item: &str) -> Problem {
    Problem::new(format!("invalid environment item '{item}'"))
        .hint("use KEY=value items separated by commas; quote values holding commas: KEY=\"a,b\"")
}

/// One `KEY=value` at the start of `s`; returns it and the text after it.
fn environment_item(s: &str) -> Result<((String, String), &str), Problem> {
    let item_end = s.find([',', '\n']).unwrap_or(s.len());
    let Some(eq) = s[..item_end].find('=') else {
        return Err(bad_environment_item(s[..item_end].trim()));
    };
    let key = s[..eq].trim();
    let key_ok =
        !key.is_empty() && !key.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'');
    if !key_ok {
        return Err(bad_environment_item(s[..item_end].trim()));
    }
    let (value, after) = environment_value(&s[eq + 1..])?;
    Ok(((key.to_string(), value), after))
}

/// A value up to an unquoted `,` or newline. Quotes (`"` or `'`) may wrap all or part of it and
/// keep their content verbatim; unquoted whitespace at either end is dropped.
fn environment_value(s: &str) -> Result<(String, &str), Problem> {
    let mut value = String::new();
    let mut pending_space = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => value.push(c),
            None if c == ',' || c == '\n' => return Ok((value, &s[i..])),
            None if c.is_whitespace() => {
                if started {
                    pending_space.push(c);
                }
            }
            None => {
                value.push_str(&pending_space);
                pending_space.clear();
                started = true;
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else {
                    value.push(c);
                }
            }
        }
    }
    match quote {
        Some(q) => Err(
            Problem::new(format!("unterminated {q} quote in environment value"))
                .hint(format!("close the quote: KEY={q}value{q}")),
        ),
        None => Ok((value, "")),
    }
}

/// A duration in whole seconds: bare digits are seconds; otherwise humantime's syntax
/// (`90s`, `30m`, `24h`, `7d`, `1h 30m`, `2weeks`), units in any case (`M` is minutes, as
/// it always was here, not humantime's months).
pub(crate) fn duration(s: &str) -> Result<std::time::Duration, Problem> {
    let t = s.trim();
    let bad = || {
        Problem::new(format!("{s:?} is not a duration"))
            .hint("use a number with s, m, h or d, e.g. 30s, 24h, 7d")
    };
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|_| bad())?
    } else {
        humantime::parse_duration(&t.to_ascii_lowercase()).map_err(|_| bad())?
    };
    if d.subsec_nanos() != 0 {
        return Err(
            Problem::new(format!("{s:?} is not a whole number of seconds"))
                .hint("use whole seconds, e.g. 1s, 30s, 24h"),
        );
    }
    if d.as_secs() > MAX_SECS {
        return Err(
            Problem::new(format!("{s:?} is too long")).hint("use at most ten years (3650d)")
        );
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("1024"), Ok(1024));
        assert_eq!(size("10k"), Ok(10 * 1024));
        assert_eq!(size("1M"), Ok(1 << 20));
        assert_eq!(size("500mb"), Ok(500 << 20));
        assert_eq!(size("2GB"), Ok(2 << 30));
        for bad in ["1.5MB", "10TB", "MB", "-1", "10 MB", "", " 1", "1e3"] {
            let e = size(bad).unwrap_err();
            assert!(e.hint.is_some(), "{bad}");
        }
    }

    #[test]
    fn booleans() {
        for t in ["true", "YES", "On", "1"] {
            assert_eq!(boolean(t), Ok(true));
        }
        for f in ["false", "No", "OFF", "0"] {
            assert_eq!(boolean(f), Ok(false));
        }
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn durations() {
        let secs = |s: &str| duration(s).map(|d| d.as_secs()).map_err(|p| p.message);
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("30M"), Ok(1800), "minutes, whatever the case");
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs(" 2d "), Ok(172_800));
        assert_eq!(secs("1h 30m"), Ok(5400));
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("1.5h"), Ok(5400));
        for bad in ["", "daily", "-1s", "10x", "s"] {
            assert!(
                secs(bad).unwrap_err().contains("is not a duration"),
                "{bad:?}"
            );
        }
        assert!(
            secs("500ms")
                .unwrap_err()
                .contains("whole number of seconds")
        );
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal("TERM"), Ok(15));
        assert_eq!(signal("sigterm"), Ok(15));
        assert_eq!(signal("hup"), Ok(1));
        assert_eq!(signal("USR2"), Ok(12));
        assert_eq!(signal("9"), Ok(9));
        assert!(signal("0").is_err());
        assert!(signal("TERMINATE").is_err());
        assert!(signal("SIGSIGTERM").is_err());
        assert_eq!(signal("iot"), Ok(6), "supervisord's aliases");
        assert_eq!(signal("SIGPOLL"), Ok(29));
        assert_eq!(signal("cld"), Ok(17));
        assert_eq!(signal("STKFLT"), Ok(16));
        assert_eq!(signal("PWR"), Ok(30));
        assert_eq!(signals("INT TERM"), Ok(vec![2, 15]));
        assert!(signals("").is_err());
    }

    #[test]
    fn octal_modes() {
        assert_eq!(octal("0700", 0o7777), Ok(0o700));
        assert_eq!(octal("022", 0o777), Ok(0o22));
        assert_eq!(octal("0o600", 0o7777), Ok(0o600));
        assert!(octal("0800", 0o7777).is_err());
        assert!(octal("01777", 0o777).is_err());
        assert!(octal("", 0o777).is_err());
    }

    #[test]
    fn small_grammars() {
        assert_eq!(exitcodes("0, 2"), Ok(vec![0, 2]));
        assert!(exitcodes("0,x").is_err());
        assert!(exitcodes("256").is_err());
        assert_eq!(startretries("FOREVER"), Ok(StartRetries::Forever));
        assert_eq!(startretries("5"), Ok(StartRetries::Count(5)));
        assert!(startretries("-1").is_err());
        assert_eq!(autorestart("unexpected"), Ok(AutoRestart::Unexpected));
        assert_eq!(autorestart("yes"), Ok(AutoRestart::Always));
        assert_eq!(loglevel("INFO"), Ok("info".into()));
        assert_eq!(chown("a:b"), Ok(("a".into(), Some("b".into()))));
        assert!(chown(":b").is_err());
        assert!(host_port("127.0.0.1:9001").is_ok());
        assert!(host_port("9001").is_err());
        let sha = "A".repeat(40);
        assert_eq!(
            password(&format!("{{SHA}}{sha}")),
            Ok(Password::Sha1Hex("a".repeat(40)))
        );
        assert!(password("{SHA}xyz").is_err());
    }

    #[test]
    fn environment_items() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            environment(r#"A=1, B="x, y" ,C='s q',D=a"b c"d,E="""#),
            Ok(pairs(&[
                ("A", "1"),
                ("B", "x, y"),
                ("C", "s q"),
                ("D", "ab cd"),
                ("E", "")
            ]))
        );
        assert_eq!(
            environment("A=1,\nB=2,"),
            Ok(pairs(&[("A", "1"), ("B", "2")]))
        );
        assert_eq!(
            environment("GIN_MODE=\"release\""),
            Ok(pairs(&[("GIN_MODE", "release")]))
        );
        assert_eq!(environment(""), Ok(vec![]));
        assert!(environment("A=1,B").is_err());
        assert!(environment("=1").is_err());
        assert!(environment("A=\"1").is_err());
        assert!(environment("A B=1").is_err());
    }
}
