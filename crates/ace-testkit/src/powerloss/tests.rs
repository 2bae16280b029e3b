//! The model's rules, one test each, on small files whose every surviving state is known.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use ace_log::{Durability, OpenMode};

use super::{Crash, Disk, Tear, scratch_dir};

fn crash_after(root: &Path, at_op: u64, tear: Tear) -> (Disk, std::path::PathBuf) {
    let image = root.with_extension("image");
    let disk = Disk::crashing(
        root,
        Crash {
            at_op,
            tear,
            image: image.clone(),
        },
    );
    (disk, image)
}

fn read(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// Creates `f` durably (content and name) with `content`; 4 operations.
fn durable_file(disk: &Disk, root: &Path, content: &[u8]) -> File {
    let path = root.join("f");
    let file = disk.open(&path, OpenMode::Create).unwrap();
    disk.write_at(&file, &path, content, 0).unwrap();
    disk.sync_file(&file, &path).unwrap();
    disk.sync_dir(root).unwrap();
    file
}

#[test]
fn given_a_drop_cut_then_only_synced_bytes_and_synced_names_survive() {
    let scratch = scratch_dir();
    let root = scratch.path().join("disk");
    let (disk, image) = crash_after(&root, 7, Tear::Drop);
    let file = durable_file(&disk, &root, b"synced");
    let path = root.join("f");
    disk.write_at(&file, &path, b"SYNCED-LOST", 0).unwrap();
    let g = disk.open(&root.join("g"), OpenMode::Create).unwrap();
    disk.sync_file(&g, &root.join("g")).unwrap();
    assert!(disk.crashed());
    assert_eq!(read(&image.join("f")).unwrap(), b"synced");
    assert_eq!(
        read(&image.join("g")),
        None,
        "sync_file does not make a new name durable"
    );
}

#[test]
fn given_the_cut_then_every_later_call_fails_with_eio_and_nothing_more_is_counted() {
    let scratch = scratch_dir();
    let root = scratch.path().join("disk");
    let (disk, _) = crash_after(&root, 2, Tear::Drop);
    let path = root.join("f");
    let file = disk.open(&path, OpenMode::Create).unwrap();
    disk.write_at(&file, &path, b"x", 0).unwrap();
    let err = disk.sync_file(&file, &path).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(disk.open(&root.join("h"), OpenMode::Create).is_err());
    assert_eq!(disk.ops(), 2);
}

#[test]
fn given_torn_cuts_then_each_sector_is_old_new_or_between_and_growth_keeps_a_sector_aligned_prefix()
{
    let uniform = |s: &[u8], allowed: &[u8]| allowed.iter().any(|&a| s.iter().all(|&b| b == a));
    let (mut lengths, mut second) = (BTreeSet::new(), BTreeSet::new());
    for seed in 0..300 {
        let scratch = scratch_dir();
        let root = scratch.path().join("disk");
        let (disk, image) = crash_after(&root, 7, Tear::Sectors { seed });
        let file = durable_file(&disk, &root, &[b'o'; 1024]);
        let path = root.join("f");
        disk.write_at(&file, &path, &[b'a'; 512], 512).unwrap();
        disk.write_at(&file, &path, &[b'b'; 2048], 512).unwrap();
        disk.write_at(&file, &path, &[b'c'; 10], 2600).unwrap();
        let got = read(&image.join("f")).unwrap();
        let len = got.len();
        assert!(
            [1024, 1536, 2048, 2560, 2610].contains(&len),
            "seed {seed}: length {len}"
        );
        let sector = |i: usize| &got[i * 512..((i + 1) * 512).min(len)];
        assert!(uniform(sector(0), b"o"), "seed {seed}: untouched sector");
        assert!(uniform(sector(1), b"oab"), "seed {seed}: sector 1");
        for i in 2..len.div_ceil(512).min(5) {
            assert!(uniform(sector(i), b"\0b"), "seed {seed}, sector {i}");
        }
        if len == 2610 {
            assert!(uniform(&got[2560..2600], b"\0"), "seed {seed}: the hole");
            assert!(uniform(&got[2600..], b"\0c"), "seed {seed}: last sector");
        }
        lengths.insert(len);
        second.insert(sector(1)[0]);
    }
    assert_eq!(lengths.len(), 5, "every sector-aligned prefix occurs");
    assert_eq!(second.len(), 3, "sector 1 as before, between and after");
}

#[test]
fn given_torn_cuts_then_directory_changes_survive_as_a_prefix_of_their_order() {
    let mut seen = BTreeSet::new();
    for seed in 0..100 {
        let scratch = scratch_dir();
        let root = scratch.path().join("disk");
        let (disk, image) = crash_after(&root, 3, Tear::Sectors { seed });
        for name in ["a", "b", "c"] {
            disk.open(&root.join(name), OpenMode::Create).unwrap();
        }
        let names: String = ["a", "b", "c"]
            .into_iter()
            .filter(|n| image.join(n).exists())
            .collect();
        assert!(["", "a", "ab", "abc"].contains(&names.as_str()), "{names}");
        seen.insert(names);
    }
    assert_eq!(seen.len(), 4, "every prefix occurs: {seen:?}");
}

#[test]
fn given_a_rename_after_a_synced_temporary_then_the_target_holds_old_or_new_never_a_mix() {
    for seed in 0..100 {
        let scratch = scratch_dir();
        let root = scratch.path().join("disk");
        // Cut anywhere from the temporary's creation to the directory sync after the rename.
        let (disk, image) = crash_after(&root, 5 + seed % 5, Tear::Sectors { seed });
        drop(durable_file(&disk, &root, b"old"));
        let tmp = root.join("f.tmp");
        let rewrite = || -> std::io::Result<()> {
            let t = disk.open(&tmp, OpenMode::Truncate)?;
            disk.write_at(&t, &tmp, b"new", 0)?;
            disk.sync_file(&t, &tmp)?;
            disk.rename(&tmp, &root.join("f"))?;
            disk.sync_dir(&root)
        };
        let _ = rewrite();
        assert!(disk.crashed());
        let got = read(&image.join("f")).unwrap();
        assert!(got == b"old" || got == b"new", "seed {seed}: {got:?}");
    }
}

#[test]
fn given_a_directory_whose_name_was_never_synced_then_it_is_gone_with_its_files() {
    let scratch = scratch_dir();
    let root = scratch.path().join("disk");
    let (disk, image) = crash_after(&root, 5, Tear::Drop);
    let sub = root.join("sub");
    disk.create_dir(&sub).unwrap();
    let path = sub.join("f");
    let file = disk.open(&path, OpenMode::Create).unwrap();
    disk.sync_dir(&sub).unwrap();
    disk.write_at(&file, &path, b"x", 0).unwrap();
    disk.sync_file(&file, &path).unwrap();
    assert!(image.is_dir());
    assert!(!image.join("sub").exists());
}

#[test]
#[should_panic(expected = "was not created through the storage seam")]
fn given_a_file_created_behind_the_seam_when_written_through_it_then_the_disk_panics() {
    let scratch = scratch_dir();
    let root = scratch.path().join("disk");
    let disk = Disk::new(&root);
    let path = root.join("sneaky");
    std::fs::write(&path, b"x").unwrap();
    let file = File::options().write(true).open(&path).unwrap();
    let _ = disk.write_at(&file, &path, b"y", 0);
}

#[test]
fn given_existing_files_when_a_disk_starts_on_them_then_they_are_durable() {
    let scratch = scratch_dir();
    let root = scratch.path().join("disk");
    std::fs::create_dir_all(root.join("d")).unwrap();
    std::fs::write(root.join("d/f"), b"before").unwrap();
    let (disk, image) = crash_after(&root, 1, Tear::Drop);
    disk.open(&root.join("d/f"), OpenMode::Existing).unwrap();
    assert_eq!(read(&image.join("d/f")).unwrap(), b"before");
}
