//! The revision a snapshot file holds, read from the file itself.
//!
//! A snapshot is etcd's backend, a bbolt database, as of the moment the Snapshot RPC began
//! (etcd commits its pending batch and streams one read transaction). The stream carries no
//! revision (etcd 3.4 sends no response header with it), and a revision asked for just before
//! the stream is only a lower bound: writes that land between the two are in the file. So the
//! revision is read where it is true: the newest revision in etcd's `key` bucket, whose keys
//! are revisions (8 bytes big-endian main revision, `_`, 8 bytes sub revision, and a `t` on a
//! tombstone), sorted. That is what `etcdctl snapshot status` prints as the revision (0 when
//! the bucket is empty).
//!
//! The same reading gives what the file records of the etcd that wrote it
//! ([`recorded_versions`]): the cluster version in the `cluster` bucket, and from 3.6 the
//! storage version in `meta`, which restore compares with its tool's version.
//!
//! Only what that needs of bbolt's file format is read, page by page (never the whole file):
//! the two meta pages (the valid one with the newer transaction), the root bucket's tree down
//! to the `key` bucket, and that bucket's rightmost leaf. bbolt writes its integers in the
//! machine's byte order; etcd runs on little-endian machines.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const BUCKET_LEAF: u32 = 0x01;
/// The meta fields before the checksum, which covers them.
const META_SUMMED: usize = 56;
/// Deeper than any real tree: a bound against a malformed file's loops.
const MAX_DEPTH: usize = 32;
/// etcd's bucket of revisions.
const KEY_BUCKET: &[u8] = b"key";
/// etcd's bucket of cluster-wide settings (the cluster version among them).
const CLUSTER_BUCKET: &[u8] = b"cluster";
/// etcd's bucket of the backend's own state (3.6+: the storage version).
const META_BUCKET: &[u8] = b"meta";

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn fnv1a64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A valid meta page's page size, root page and transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta {
    page_size: u64,
    root: u64,
    txid: u64,
}

/// The meta in a page's bytes (from its header on), if it is a valid one.
fn meta(page: &[u8]) -> Option<Meta> {
    if u16_at(page, 8)? & META_PAGE == 0 {
        return None;
    }
    let m = page.get(PAGE_HEADER..PAGE_HEADER + META_SUMMED + 8)?;
    let valid = u32_at(m, 0)? == MAGIC
        && u32_at(m, 4)? == VERSION
        && u64_at(m, META_SUMMED)? == fnv1a64(&m[..META_SUMMED]);
    let page_size = u64::from(u32_at(m, 8)?);
    (valid && page_size >= 512).then_some(Meta {
        page_size,
        root: u64_at(m, 16)?,
        txid: u64_at(m, 48)?,
    })
}

/// One page (with its overflow) or an inline bucket's page: its header first.
struct Page(Vec<u8>);

impl Page {
    fn flags(&self) -> u16 {
        u16_at(&self.0, 8).unwrap_or(0)
    }

    fn count(&self) -> usize {
        usize::from(u16_at(&self.0, 10).unwrap_or(0))
    }

    /// Bytes of element `i` at `pos` from the element's own start.
    fn at(&self, i: usize, pos: u32, len: u32) -> Result<&[u8], String> {
        let start = PAGE_HEADER + i * ELEMENT + pos as usize;
        self.0
            .get(start..start + len as usize)
            .ok_or_else(|| "an element points past its page".to_string())
    }

    /// A branch element: its key and child page.
    fn branch(&self, i: usize) -> Result<(&[u8], u64), String> {
        let e = PAGE_HEADER + i * ELEMENT;
        let bad = || "a branch element past its page".to_string();
        let pos = u32_at(&self.0, e).ok_or_else(bad)?;
        let ksize = u32_at(&self.0, e + 4).ok_or_else(bad)?;
        let child = u64_at(&self.0, e + 8).ok_or_else(bad)?;
        Ok((self.at(i, pos, ksize)?, child))
    }

    /// A leaf element: its flags, key and value.
    fn leaf(&self, i: usize) -> Result<(u32, &[u8], &[u8]), String> {
        let e = PAGE_HEADER + i * ELEMENT;
        let bad = || "a leaf element past its page".to_string();
        let flags = u32_at(&self.0, e).ok_or_else(bad)?;
        let pos = u32_at(&self.0, e + 4).ok_or_else(bad)?;
        let ksize = u32_at(&self.0, e + 8).ok_or_else(bad)?;
        let vsize = u32_at(&self.0, e + 12).ok_or_else(bad)?;
        let kv = self.at(i, pos, ksize.saturating_add(vsize))?;
        let (k, v) = kv.split_at(ksize as usize);
        Ok((flags, k, v))
    }
}

/// A bbolt file read page by page.
struct Db<'f> {
    file: &'f File,
    len: u64,
    page_size: u64,
}

impl Db<'_> {
    fn read(&self, at: u64, n: u64) -> Result<Vec<u8>, String> {
        if at.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(format!("page at byte {at} runs past the file's end"));
        }
        let mut buf = vec![0u8; n as usize];
        self.file
            .read_exact_at(&mut buf, at)
            .map_err(|e| e.to_string())?;
        Ok(buf)
    }

    fn page(&self, id: u64) -> Result<Page, String> {
        let at = id
            .checked_mul(self.page_size)
            .ok_or_else(|| format!("page {id} is out of range"))?;
        let head = self.read(at, PAGE_HEADER as u64)?;
        let overflow = u64::from(u32_at(&head, 12).unwrap_or(0));
        let page = Page(self.read(at, (overflow + 1) * self.page_size)?);
        if page.flags() & (BRANCH_PAGE | LEAF_PAGE) == 0 {
            return Err(format!("page {id} is neither a branch nor a leaf"));
        }
        Ok(page)
    }

    /// The leaf element `name` (its flags and value) of the tree at `page`, if it has one.
    fn find(
        &self,
        page: &Page,
        name: &[u8],
        depth: usize,
    ) -> Result<Option<(u32, Vec<u8>)>, String> {
        if depth > MAX_DEPTH {
            return Err("the tree is deeper than any real one".into());
        }
        if page.flags() & BRANCH_PAGE != 0 {
            // The last child whose first key is not past the name (the first if all are).
            let mut child = None;
            for i in 0..page.count() {
                let (k, id) = page.branch(i)?;
                if child.is_some() && k > name {
                    break;
                }
                child = Some(id);
            }
            return match child {
                Some(id) => self.find(&self.page(id)?, name, depth + 1),
                None => Ok(None),
            };
        }
        for i in 0..page.count() {
            let (flags, k, v) = page.leaf(i)?;
            if k == name {
                return Ok(Some((flags, v.to_vec())));
            }
        }
        Ok(None)
    }

    /// The tree of the bucket `name` in the bucket whose tree starts at `page`.
    fn bucket(&self, page: &Page, name: &[u8]) -> Result<Option<Page>, String> {
        let Some((flags, v)) = self.find(page, name, 0)? else {
            return Ok(None);
        };
        if flags & BUCKET_LEAF == 0 {
            return Err(format!(
                "{:?} is not a bucket",
                String::from_utf8_lossy(name)
            ));
        }
        let root = u64_at(&v, 0).ok_or("a bucket without its header")?;
        if root == 0 {
            // Inline: the bucket's one page follows its header in the value.
            Ok(Some(Page(v.get(16..).unwrap_or_default().to_vec())))
        } else {
            self.page(root).map(Some)
        }
    }

    /// The value of key `key` in bucket `bucket` (under the root), if both exist.
    fn value(&self, root: &Page, bucket: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let Some(b) = self.bucket(root, bucket)? else {
            return Ok(None);
        };
        Ok(self
            .find(&b, key, 0)?
            .filter(|(flags, _)| flags & BUCKET_LEAF == 0)
            .map(|(_, v)| v))
    }

    /// The greatest key of the tree at `page` (None: an empty tree).
    fn last_key(&self, page: &Page, depth: usize) -> Result<Option<Vec<u8>>, String> {
        if depth > MAX_DEPTH {
            return Err("the tree is deeper than any real one".into());
        }
        if page.flags() & BRANCH_PAGE != 0 {
            for i in (0..page.count()).rev() {
                let (_, id) = page.branch(i)?;
                if let Some(k) = self.last_key(&self.page(id)?, depth + 1)? {
                    return Ok(Some(k));
                }
            }
            return Ok(None);
        }
        match page.count() {
            0 => Ok(None),
            n => Ok(Some(page.leaf(n - 1)?.1.to_vec())),
        }
    }
}

/// The revision the snapshot (a bbolt file, optionally followed by etcd's checksum) at `path`
/// holds: the newest in its `key` bucket, 0 when it has none.
pub fn revision(path: &Path) -> Result<i64, String> {
    let err = |e: String| format!("{}: cannot read its revision: {e}", path.display());
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
    revision_of(&file, len).map_err(err)
}

/// The valid meta page with the newest transaction, and the file read with its page size.
fn open(file: &File, len: u64) -> Result<(Db<'_>, Page), String> {
    let first = Db {
        file,
        len,
        page_size: 4096,
    };
    let m0 = first
        .read(0, (PAGE_HEADER + META_SUMMED + 8) as u64)
        .ok()
        .and_then(|p| meta(&p));
    let size = m0.map_or(4096, |m| m.page_size);
    let m1 = first
        .read(size, (PAGE_HEADER + META_SUMMED + 8) as u64)
        .ok()
        .and_then(|p| meta(&p));
    let m = match (m0, m1) {
        (Some(a), Some(b)) => {
            if b.txid > a.txid {
                b
            } else {
                a
            }
        }
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err("not a bbolt database (no valid meta page)".into()),
    };
    let db = Db {
        file,
        len,
        page_size: m.page_size,
    };
    let root = db.page(m.root)?;
    Ok((db, root))
}

/// What a snapshot records of the etcd that wrote it: the cluster version (bucket `cluster`,
/// key `clusterVersion`: `3.4.0`, `3.5.0`, the `major.minor` of the oldest member when the
/// cluster last decided it; etcd 3.4 and 3.5 both write it) and, from etcd 3.6 on, the
/// storage version (bucket `meta`, key `storageVersion`). Absent keys are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub cluster_version: Option<String>,
    pub storage_version: Option<String>,
}

/// [`Recorded`] of the snapshot (or data dir's `db`) at `path`.
pub fn recorded_versions(path: &Path) -> Result<Recorded, String> {
    let err = |e: String| format!("{}: cannot read its versions: {e}", path.display());
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let len = file.metadata().map_err(|e| err(e.to_string()))?.len();
    let (db, root) = open(&file, len).map_err(err)?;
    let text = |v: Option<Vec<u8>>| v.map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(Recorded {
        cluster_version: text(
            db.value(&root, CLUSTER_BUCKET, b"clusterVersion")
                .map_err(err)?,
        ),
        storage_version: text(
            db.value(&root, META_BUCKET, b"storageVersion")
                .map_err(err)?,
        ),
    })
}

fn revision_of(file: &File, len: u64) -> Result<i64, String> {
    let (db, root) = open(file, len)?;
    let Some(keys) = db.bucket(&root, KEY_BUCKET)? else {
        return Ok(0);
    };
    match db.last_key(&keys, 0)? {
        None => Ok(0),
        Some(k) => {
            let main: [u8; 8] = k
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or("a key in the key bucket is not a revision")?;
            Ok(i64::from_be_bytes(main))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const PS: usize = 4096;

    fn header(id: u64, flags: u16, count: usize) -> Vec<u8> {
        let mut p = vec![0u8; PS];
        p[..8].copy_from_slice(&id.to_le_bytes());
        p[8..10].copy_from_slice(&flags.to_le_bytes());
        p[10..12].copy_from_slice(&(count as u16).to_le_bytes());
        p
    }

    fn meta_page(id: u64, root: u64, txid: u64) -> Vec<u8> {
        let mut p = header(id, META_PAGE, 0);
        let m = &mut p[PAGE_HEADER..];
        m[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        m[8..12].copy_from_slice(&(PS as u32).to_le_bytes());
        m[16..24].copy_from_slice(&root.to_le_bytes());
        m[48..56].copy_from_slice(&txid.to_le_bytes());
        let sum = fnv1a64(&m[..META_SUMMED]);
        m[META_SUMMED..META_SUMMED + 8].copy_from_slice(&sum.to_le_bytes());
        p
    }

    /// A leaf page of (flags, key, value) elements, `len` bytes long (an inline page is short).
    fn leaf_page(id: u64, elems: &[(u32, Vec<u8>, Vec<u8>)], len: usize) -> Vec<u8> {
        let mut p = header(id, LEAF_PAGE, elems.len());
        let mut data = PAGE_HEADER + elems.len() * ELEMENT;
        for (i, (flags, k, v)) in elems.iter().enumerate() {
            let e = PAGE_HEADER + i * ELEMENT;
            p[e..e + 4].copy_from_slice(&flags.to_le_bytes());
            p[e + 4..e + 8].copy_from_slice(&((data - e) as u32).to_le_bytes());
            p[e + 8..e + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[e + 12..e + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
            p[data..data + k.len()].copy_from_slice(k);
            p[data + k.len()..data + k.len() + v.len()].copy_from_slice(v);
            data += k.len() + v.len();
        }
        p.truncate(len.max(data));
        p
    }

    fn branch_page(id: u64, elems: &[(Vec<u8>, u64)]) -> Vec<u8> {
        let mut p = header(id, BRANCH_PAGE, elems.len());
        let mut data = PAGE_HEADER + elems.len() * ELEMENT;
        for (i, (k, child)) in elems.iter().enumerate() {
            let e = PAGE_HEADER + i * ELEMENT;
            p[e..e + 4].copy_from_slice(&((data - e) as u32).to_le_bytes());
            p[e + 4..e + 8].copy_from_slice(&(k.len() as u32).to_le_bytes());
            p[e + 8..e + 16].copy_from_slice(&child.to_le_bytes());
            p[data..data + k.len()].copy_from_slice(k);
            data += k.len();
        }
        p
    }

    /// etcd's key for a revision (`t` marks a tombstone).
    fn rev(main: i64, tombstone: bool) -> Vec<u8> {
        let mut k = main.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&0i64.to_be_bytes());
        if tombstone {
            k.push(b't');
        }
        k
    }

    fn bucket_at(root: u64) -> Vec<u8> {
        let mut v = root.to_le_bytes().to_vec();
        v.extend_from_slice(&0u64.to_le_bytes());
        v
    }

    fn inline_bucket(elems: &[(u32, Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut v = bucket_at(0);
        v.extend(leaf_page(0, elems, 0));
        v
    }

    fn kv(k: Vec<u8>) -> (u32, Vec<u8>, Vec<u8>) {
        (0, k, b"value".to_vec())
    }

    /// Meta pages 0 and 1 (each a root page and a transaction id), then `rest` from page 2.
    fn file(m0: (u64, u64), m1: (u64, u64), rest: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut pages = vec![meta_page(0, m0.0, m0.1), meta_page(1, m1.0, m1.1)];
        pages.extend(rest);
        pages
    }

    /// The file of these pages, with a checksum-like tail as etcd's snapshots have.
    fn revision_in(pages: &[Vec<u8>]) -> Result<i64, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for p in pages {
            f.write_all(p).unwrap();
        }
        f.write_all(&[7u8; 32]).unwrap();
        f.flush().unwrap();
        revision(f.path())
    }

    #[test]
    fn the_newest_revision_of_the_key_bucket_across_branches() {
        let root = leaf_page(
            2,
            &[
                (BUCKET_LEAF, b"alarm".to_vec(), inline_bucket(&[])),
                (BUCKET_LEAF, b"key".to_vec(), bucket_at(3)),
                (
                    BUCKET_LEAF,
                    b"meta".to_vec(),
                    inline_bucket(&[kv(b"consistent_index".to_vec())]),
                ),
            ],
            PS,
        );
        let keys = branch_page(
            3,
            &[(rev(1, false), 4), (rev(4, false), 5), (rev(9, false), 6)],
        );
        let low = leaf_page(
            4,
            &[kv(rev(1, false)), kv(rev(2, false)), kv(rev(3, false))],
            PS,
        );
        let high = leaf_page(5, &[kv(rev(4, false)), kv(rev(2051, true))], PS);
        // The rightmost leaf emptied (never rebalanced): the one before it holds the newest.
        let empty = leaf_page(6, &[], PS);
        let pages = file((2, 7), (2, 6), vec![root, keys, low, high, empty]);
        assert_eq!(revision_in(&pages), Ok(2051));
    }

    #[test]
    fn the_root_may_branch_and_the_newer_valid_meta_wins() {
        // Meta 1 is newer and points at a root that branches to the key bucket's leaf.
        let old_root = leaf_page(2, &[(BUCKET_LEAF, b"key".to_vec(), bucket_at(6))], PS);
        let root = branch_page(3, &[(b"alarm".to_vec(), 4), (b"key".to_vec(), 5)]);
        let left = leaf_page(
            4,
            &[(BUCKET_LEAF, b"alarm".to_vec(), inline_bucket(&[]))],
            PS,
        );
        let right = leaf_page(
            5,
            &[
                (BUCKET_LEAF, b"key".to_vec(), bucket_at(7)),
                (BUCKET_LEAF, b"lease".to_vec(), inline_bucket(&[])),
            ],
            PS,
        );
        let stale = leaf_page(6, &[kv(rev(5, false))], PS);
        let fresh = leaf_page(7, &[kv(rev(5, false)), kv(rev(6, false))], PS);
        let rest = vec![old_root, root, left, right, stale, fresh];
        let mut pages = file((2, 8), (3, 9), rest);
        assert_eq!(revision_in(&pages), Ok(6));
        // A newer meta with a bad checksum is not used.
        pages[1][PAGE_HEADER + META_SUMMED] ^= 1;
        assert_eq!(revision_in(&pages), Ok(5));
    }

    /// [`recorded_versions`] of the file of these pages.
    fn recorded_in(pages: &[Vec<u8>]) -> Result<Recorded, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for p in pages {
            f.write_all(p).unwrap();
        }
        f.write_all(&[7u8; 32]).unwrap();
        f.flush().unwrap();
        recorded_versions(f.path())
    }

    #[test]
    fn the_cluster_and_storage_versions_a_file_records() {
        let kv2 = |k: &[u8], v: &[u8]| (0, k.to_vec(), v.to_vec());
        // 3.4 and 3.5: the cluster bucket, inline, beside a members bucket (a nested one).
        let root = leaf_page(
            2,
            &[
                (
                    BUCKET_LEAF,
                    b"cluster".to_vec(),
                    inline_bucket(&[kv2(b"clusterVersion", b"3.5.0")]),
                ),
                (BUCKET_LEAF, b"key".to_vec(), inline_bucket(&[])),
                (
                    BUCKET_LEAF,
                    b"meta".to_vec(),
                    inline_bucket(&[kv(b"consistent_index".to_vec())]),
                ),
            ],
            PS,
        );
        assert_eq!(
            recorded_in(&file((2, 1), (2, 1), vec![root])),
            Ok(Recorded {
                cluster_version: Some("3.5.0".into()),
                storage_version: None
            })
        );
        // 3.6: the storage version in meta, the cluster bucket in a page of its own.
        let root = branch_page(2, &[(b"alarm".to_vec(), 3), (b"key".to_vec(), 4)]);
        let left = leaf_page(3, &[(BUCKET_LEAF, b"cluster".to_vec(), bucket_at(5))], PS);
        let right = leaf_page(
            4,
            &[
                (BUCKET_LEAF, b"key".to_vec(), inline_bucket(&[])),
                (
                    BUCKET_LEAF,
                    b"meta".to_vec(),
                    inline_bucket(&[
                        kv(b"consistent_index".to_vec()),
                        kv2(b"storageVersion", b"3.6.0"),
                    ]),
                ),
            ],
            PS,
        );
        let cluster = leaf_page(5, &[kv2(b"clusterVersion", b"3.6.0")], PS);
        assert_eq!(
            recorded_in(&file((2, 1), (2, 1), vec![root, left, right, cluster])),
            Ok(Recorded {
                cluster_version: Some("3.6.0".into()),
                storage_version: Some("3.6.0".into())
            })
        );
        // Neither recorded (a cluster that never decided its version).
        let bare = leaf_page(2, &[(BUCKET_LEAF, b"key".to_vec(), inline_bucket(&[]))], PS);
        assert_eq!(
            recorded_in(&file((2, 1), (2, 1), vec![bare])),
            Ok(Recorded::default())
        );
        let e = recorded_in(&[vec![0u8; PS], vec![0u8; PS]]).unwrap_err();
        assert!(e.contains("not a bbolt database"), "{e}");
    }

    #[test]
    fn an_empty_or_missing_key_bucket_is_revision_zero_and_junk_is_an_error() {
        let inline = leaf_page(2, &[(BUCKET_LEAF, b"key".to_vec(), inline_bucket(&[]))], PS);
        assert_eq!(revision_in(&file((2, 1), (2, 1), vec![inline])), Ok(0));
        let with_one = leaf_page(
            2,
            &[(
                BUCKET_LEAF,
                b"key".to_vec(),
                inline_bucket(&[kv(rev(3, false))]),
            )],
            PS,
        );
        assert_eq!(revision_in(&file((2, 1), (2, 1), vec![with_one])), Ok(3));
        let none = leaf_page(
            2,
            &[(BUCKET_LEAF, b"meta".to_vec(), inline_bucket(&[]))],
            PS,
        );
        assert_eq!(revision_in(&file((2, 1), (2, 1), vec![none])), Ok(0));

        let e = revision_in(&[vec![0u8; PS], vec![0u8; PS]]).unwrap_err();
        assert!(e.contains("not a bbolt database"), "{e}");
        // A root page past the end of the file.
        let e = revision_in(&file((40, 1), (40, 1), vec![])).unwrap_err();
        assert!(e.contains("past the file's end"), "{e}");
        // A key bucket entry that is not a bucket.
        let flat = leaf_page(2, &[kv(b"key".to_vec())], PS);
        let e = revision_in(&file((2, 1), (2, 1), vec![flat])).unwrap_err();
        assert!(e.contains("not a bucket"), "{e}");
    }
}
