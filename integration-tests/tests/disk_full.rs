//! A real full disk under the real binary (issue 13). The hub's SQLite database lives
//! on a small tmpfs that the test mounts in a user and mount namespace of its own
//! (`unshare --user --map-root-user --mount`: no root needed, nothing mounted on the
//! host). The test fills that file system to ENOSPC through `/proc/PID/root`, sends
//! every kind of write, frees the space, then kills the hub (SIGKILL) and starts it
//! again on the same file system: every write answered 2xx must be there, every
//! write answered 503 must not, and nothing may have answered anything else.
//! Peers: `reqwest` as the HTTP client; util-linux `unshare` and the kernel's tmpfs
//! as the disk.

use integration_tests::{binary, free_port, TEST_MASTER_KEY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCOPES: &str =
    "users.read users.write orgs.read orgs.write roles.read roles.write clients.read clients.write";

struct Disk {
    out: PathBuf,
    mnt: PathBuf,
    child: std::process::Child,
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for f in ["hub1.pid", "hub2.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.out.join(f)) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
        }
    }
}

impl Disk {
    /// The path of `name` on the tmpfs, as the test (outside the namespace) sees it.
    fn inside(&self, name: &str) -> PathBuf {
        let pid = std::fs::read_to_string(self.out.join("hub1.pid")).unwrap();
        PathBuf::from(format!(
            "/proc/{}/root{}",
            pid.trim(),
            self.mnt.join(name).display()
        ))
    }
}

fn start(dir: &Path, port: u16) -> Disk {
    let out = dir.to_path_buf();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let db = format!("sqlite://{}/hub.db", mnt.display());
    let bind = format!("127.0.0.1:{port}");
    // The first hub serves until the test kills it; the second starts on the same
    // tmpfs (which lives as long as this namespace).
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=12m hms-disk-full "{mnt}"
"$BIN" client create --database-url "{db}" --json --name admin --grant client_credentials --role hub-admin {scopes} > "{out}/client.json"
"$BIN" serve --database-url "{db}" --bind {bind} > "{out}/hub1.log" 2>&1 &
echo $! > "{out}/hub1.pid"
wait $! || true
"$BIN" serve --database-url "{db}" --bind {bind} > "{out}/hub2.log" 2>&1 &
echo $! > "{out}/hub2.pid"
wait $! || true
"#,
        mnt = mnt.display(),
        out = out.display(),
        scopes = SCOPES
            .split(' ')
            .map(|s| format!("--scope {s}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let child = Command::new("unshare")
        .current_dir(dir)
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .env("BIN", binary())
        .env("HMS_ACH__KEYS__MASTER_KEY", TEST_MASTER_KEY)
        .env_remove("HMS_ACH_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare (util-linux)");
    Disk { out, mnt, child }
}

async fn wait_ready(http: &reqwest::Client, base: &str, disk: &mut Disk) {
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        if let Ok(Some(status)) = disk.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = disk.child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("the namespace with the hub exited ({status}): {err} — this test needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hub did not become ready at {base}");
}

/// One write's answer: `true` if acknowledged (2xx). While the disk is full the only
/// other answer allowed is 503 problem+json with Retry-After.
async fn answer(what: &str, r: reqwest::Response) -> (bool, Value) {
    let status = r.status();
    let retry = r.headers().contains_key("retry-after");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return (true, body);
    }
    assert_eq!(status, 503, "{what}: {body}");
    assert!(retry, "{what}: 503 without Retry-After");
    assert_eq!(ct, "application/problem+json", "{what}");
    (false, body)
}

#[tokio::test]
async fn a_full_disk_acknowledges_only_what_it_keeps_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut disk = start(dir.path(), port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_ready(&http, &base, &mut disk).await;
    let client: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("client.json")).unwrap())
            .unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
    );
    let token_of = |http: reqwest::Client, base: String, id: String, secret: String| async move {
        let r = http
            .post(format!("{base}/oauth2/token"))
            .basic_auth(id, Some(secret))
            // No `scope`: each client gets the scopes it was registered with.
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        match v["access_token"].as_str() {
            Some(t) => t.to_string(),
            None => {
                eprintln!("token endpoint: {v}");
                String::new()
            }
        }
    };
    let token = token_of(http.clone(), base.clone(), id.into(), secret.into()).await;
    assert!(!token.is_empty());
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
    };
    for (sid, kind, parent) in [("d1", "district", None), ("s1", "school", Some("d1"))] {
        let mut b = json!({"sourcedId": sid, "kind": kind, "name": sid});
        if let Some(p) = parent {
            b["parent"] = p.into();
        }
        assert!(post("/api/v1/orgs", b)
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
    }
    let person = |sid: &str| json!({"sourcedId": sid, "kinds": ["student"], "givenName": "A", "familyName": "B", "affiliations": [{"org": "s1", "role": "student"}]});
    let r = post("/api/v1/users", person("keeper"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let keeper = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Fill the file system to the last byte.
    let filler = disk.inside("filler");
    let mut f =
        std::fs::File::create(&filler).expect("write into the hub's tmpfs through /proc/PID/root");
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    let small = vec![0u8; 512];
    while std::io::Write::write_all(&mut f, &small).is_ok() {}
    drop(f);

    // Every kind of write while full.
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let sid = format!("full-{i}");
        let mut body = person(&sid);
        body["givenName"] = "x".repeat(100).into();
        let (ok, _) = answer("create", post("/api/v1/users", body).send().await.unwrap()).await;
        if ok {
            kept.push(sid)
        } else {
            refused.push(sid)
        }
    }
    assert!(
        !refused.is_empty(),
        "the disk never filled: all 40 creates were acknowledged"
    );
    let (patched, _) = answer(
        "patch",
        http.patch(format!("{base}/api/v1/users/{keeper}"))
            .bearer_auth(&token)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"identifiers": {"sis": "L-1"}}).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (granted, _) = answer(
        "role grant",
        post(
            &format!("/api/v1/users/{keeper}/roles"),
            json!({"role": "approver", "org": "s1"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    let (client_made, new_client) = answer(
        "client create",
        post("/api/v1/clients", json!({"name": "Made on a full disk", "grant_types": ["client_credentials"], "scopes": ["users.read"]})).send().await.unwrap(),
    )
    .await;
    let (suspended, _) = answer(
        "lifecycle",
        post(
            &format!("/api/v1/users/{keeper}/lifecycle"),
            json!({"status": "suspended"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    // Readiness: the probe's verdict stands two seconds, so poll for a while.
    let (mut ready_status, mut ready_body) = (reqwest::StatusCode::OK, String::new());
    for _ in 0..50 {
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        ready_status = ready.status();
        ready_body = ready.text().await.unwrap();
        if ready_status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Space comes back: writes succeed again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let mut n = 0;
    loop {
        let sid = format!("after-{n}");
        let r = post("/api/v1/users", person(&sid)).send().await.unwrap();
        if r.status().is_success() {
            kept.push(sid);
            break;
        }
        refused.push(sid);
        n += 1;
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "writes did not resume within 30 s of freeing space"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_in = freed.elapsed();
    // The readiness probe writes at most every two seconds.
    let mut ready_again = false;
    for _ in 0..50 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready_again, "ready again within 10 s once space is free");
    assert_eq!(
        ready_status, 503,
        "readyz while the disk was full: {ready_body}"
    );
    assert!(ready_body.contains("not ready: database"), "{ready_body}");

    // A crash, then a second hub on the same disk.
    let pid1 = std::fs::read_to_string(dir.path().join("hub1.pid")).unwrap();
    Command::new("kill")
        .args(["-KILL", pid1.trim()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_ready(&http, &base, &mut disk).await;
    let token = token_of(http.clone(), base.clone(), id.into(), secret.into()).await;
    let get = |path: String| http.get(format!("{base}{path}")).bearer_auth(&token).send();
    for sid in &kept {
        assert_eq!(
            get(format!("/api/v1/users/{sid}")).await.unwrap().status(),
            200,
            "acknowledged {sid} was lost"
        );
    }
    for sid in &refused {
        assert_eq!(
            get(format!("/api/v1/users/{sid}")).await.unwrap().status(),
            404,
            "refused {sid} was stored"
        );
    }
    let now: Value = get(format!("/api/v1/users/{keeper}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["identifiers"].get("sis").is_some(), patched, "{now}");
    assert_eq!(now["status"] == "suspended", suspended, "{now}");
    let roles: Value = get(format!("/api/v1/users/{keeper}/roles"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approver = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["role"] == "approver");
    assert_eq!(approver, granted, "{roles}");
    if client_made {
        let t = token_of(
            http.clone(),
            base.clone(),
            new_client["client_id"].as_str().unwrap().into(),
            new_client["client_secret"].as_str().unwrap().into(),
        )
        .await;
        assert!(
            !t.is_empty(),
            "a client acknowledged on the full disk must work after the restart"
        );
    }
    eprintln!(
        "DISK FULL: {} creates acknowledged and kept, {} refused with 503 and absent (patch {patched}, grant {granted}, client {client_made}, lifecycle {suspended} acknowledged); writes resumed {recovered_in:?} after space was freed",
        kept.len(),
        refused.len()
    );
}
