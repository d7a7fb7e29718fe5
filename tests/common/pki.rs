//! A test PKI made with openssl: a CA, a member certificate, and one from another CA.

use std::path::{Path, PathBuf};
use std::process::Command;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (is it installed?)");
    assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
}

/// Certificates made for the test: a CA, a member certificate for 127.0.0.1, localhost and *.etcd.test (server and
/// client use, as etcd's own guides make them), and a certificate from another CA.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub other_cert: PathBuf,
    pub other_key: PathBuf,
}

pub fn make_pki(dir: &Path) -> Pki {
    make_pki_for(dir, &[])
}

/// [`make_pki`] whose member certificate also names `ips` (the hosts' addresses, on three
/// hosts) among its SANs.
pub fn make_pki_for(dir: &Path, ips: &[String]) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let extra: String = ips.iter().map(|ip| format!(",IP:{ip}")).collect();
    std::fs::write(
        dir.join("member.ext"),
        format!(
            "basicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.etcd.test{extra}\n"
        ),
    )
    .unwrap();
    for (ca, subj) in [("ca", "/CN=fild test CA"), ("other-ca", "/CN=another CA")] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                subj,
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
        );
    }
    for (name, ca) in [("member", "ca"), ("other", "other-ca")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "member.ext",
                "-out",
                &format!("{name}.crt"),
            ],
        );
    }
    Pki {
        ca: dir.join("ca.crt"),
        cert: dir.join("member.crt"),
        key: dir.join("member.key"),
        other_cert: dir.join("other.crt"),
        other_key: dir.join("other.key"),
    }
}
