//! The GitLab simulator, over real HTTP on 127.0.0.1: every behaviour and error path of
//! `reference/gitlab-api.md` it reproduces, its control surface, and `runnerform sim`.

use std::time::{Duration, Instant};

use reqwest::Method;
use runnerform::sim::{
    Fault, FaultKind, MemberOf, RegistrationScope, Role, RunnerEdit, SimOptions, Simulator,
};
use serde_json::{Value, json};

use crate::common::{TestEnvironment, unmasked_token};

// ---- a small HTTP client, written for the tests (no code shared with the simulator) -----

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.body
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            http: plain(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Resp, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("PRIVATE-TOKEN", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            text,
            body,
        })
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.try_send(method.clone(), path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        self.send(Method::DELETE, path, token, body).await
    }

    pub async fn form(
        &self,
        method: Method,
        path: &str,
        token: &str,
        pairs: &[(&str, &str)],
    ) -> Resp {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("PRIVATE-TOKEN", token)
            .form(pairs)
            .send()
            .await
            .expect("send form");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            body,
        }
    }

    /// `POST /user/runners`, expecting 201; returns id and token.
    pub async fn create_runner(&self, token: &str, body: Value) -> (u64, String) {
        let r = self.post("/api/v4/user/runners", Some(token), body).await;
        let b = r.expect(201);
        (
            b["id"].as_u64().expect("id"),
            b["token"].as_str().expect("token").to_string(),
        )
    }

    pub async fn verify(&self, runner_token: &str, system_id: Option<&str>) -> Resp {
        let mut body = json!({ "token": runner_token });
        if let Some(s) = system_id {
            body["system_id"] = json!(s);
        }
        self.post("/api/v4/runners/verify", None, body).await
    }
}

/// A client that talks to 127.0.0.1 directly, whatever proxy the environment names.
pub fn plain() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn start() -> (Simulator, Client) {
    start_with(SimOptions::default())
}

fn start_with(opts: SimOptions) -> (Simulator, Client) {
    let sim = Simulator::start(opts).expect("simulator starts");
    let client = Client::new(&sim.url());
    (sim, client)
}

fn project(sim: &Simulator, path: &str) -> u64 {
    sim.project_id(path).expect("seeded project")
}

fn group(sim: &Simulator, path: &str) -> u64 {
    sim.group_id(path).expect("seeded group")
}

fn ids(list: &Value) -> Vec<u64> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect()
}

// ---- creating, verifying, polling ------------------------------------------------------

#[tokio::test]
async fn created_runner_has_a_glrt_token_that_verifies_and_polls_online() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&admin),
            json!({"runner_type": "project_type", "project_id": app, "description": "build",
                   "tag_list": ["docker", "linux"], "run_untagged": false}),
        )
        .await;
    let b = r.expect(201).clone();
    let id = b["id"].as_u64().unwrap();
    let token = b["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("glrt-t3_"), "project runner token prefix");
    assert_eq!(b["token_expires_at"], Value::Null);
    assert_eq!(
        b.as_object().unwrap().len(),
        3,
        "only id, token, expiry: {b}"
    );

    let details = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    let d = details.expect(200);
    assert_eq!(d["status"], "never_contacted");
    assert_eq!(d["runner_type"], "project_type");
    assert_eq!(d["tag_list"], json!(["docker", "linux"]));
    assert_eq!(d["run_untagged"], false);
    assert_eq!(d["projects"][0]["path_with_namespace"], "acme/app");
    assert!(d.get("token").is_none(), "a token is never returned: {d}");
    assert_eq!(d["created_by"]["username"], "root");

    // Verify records a manager but does not make a created runner contacted (17.x).
    let v = c.verify(&token, Some("s_0123456789ab")).await;
    assert_eq!(v.expect(200)["id"], json!(id));
    let m = c
        .get(&format!("/api/v4/runners/{id}/managers"), &admin)
        .await;
    let managers = m.expect(200).as_array().unwrap().clone();
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0]["system_id"], "s_0123456789ab");
    assert_eq!(managers[0]["ip_address"], "127.0.0.1");
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.body["status"], "never_contacted");

    // Polling for jobs is what makes it online; there is never a job.
    let poll = c
        .post(
            "/api/v4/jobs/request",
            None,
            json!({"token": token, "system_id": "s_0123456789ab",
                   "info": {"version": "18.1.0", "platform": "linux", "architecture": "amd64"}}),
        )
        .await;
    assert_eq!(poll.status, 204, "{}", poll.text);
    assert!(!poll.header("x-gitlab-last-update").is_empty());
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    let d = d.expect(200);
    assert_eq!(d["status"], "online");
    assert_eq!(d["online"], true);
    assert_eq!(d["version"], "18.1.0");
    assert!(d["contacted_at"].as_str().unwrap().ends_with('Z'));

    // Paused runners are told there is no job too, and REST reports them as paused.
    c.put(
        &format!("/api/v4/runners/{id}"),
        &admin,
        json!({"paused": true}),
    )
    .await
    .expect(200);
    let poll = c
        .post("/api/v4/jobs/request", None, json!({"token": token}))
        .await;
    assert_eq!(poll.status, 204);
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.body["status"], "paused");
    assert_eq!(d.body["active"], false);
}

#[tokio::test]
async fn form_encoded_bodies_and_comma_tag_lists_are_accepted() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app").to_string();
    let r = c
        .form(
            Method::POST,
            "/api/v4/user/runners",
            &admin,
            &[
                ("runner_type", "project_type"),
                ("project_id", &app),
                ("tag_list", "a, b,a"),
                ("paused", "true"),
            ],
        )
        .await;
    let id = r.expect(201)["id"].as_u64().unwrap();
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.body["tag_list"], json!(["a", "b"]));
    assert_eq!(d.body["paused"], true);

    let r = c
        .form(
            Method::PUT,
            &format!("/api/v4/runners/{id}"),
            &admin,
            &[
                ("tag_list[]", "x"),
                ("tag_list[]", "y"),
                ("maximum_timeout", "3600"),
            ],
        )
        .await;
    assert_eq!(r.expect(200)["tag_list"], json!(["x", "y"]));
    assert_eq!(r.body["maximum_timeout"], 3600);

    // A Bearer header works like PRIVATE-TOKEN.
    let res = plain()
        .get(format!("{}/api/v4/version", sim.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn group_and_instance_runners_get_their_partition_prefix() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let (_, g) = c
        .create_runner(
            &admin,
            json!({"runner_type": "group_type", "group_id": group(&sim, "acme")}),
        )
        .await;
    assert!(g.starts_with("glrt-t2_"));
    let (_, i) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    assert!(i.starts_with("glrt-t1_"));
}

// ---- authentication, scopes, roles -----------------------------------------------------

#[tokio::test]
async fn missing_unknown_expired_and_revoked_tokens_are_401() {
    let (sim, c) = start();
    let r = c.send(Method::GET, "/api/v4/runners", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401 Unauthorized"}));
    let r = c.get("/api/v4/runners", "glpat-doesnotexist0000000").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"message": "401 Unauthorized"}));

    let (uid, _) = sim.user_with_token("alice", &["api"]).unwrap();
    let expiring = sim.create_token(uid, &["api"], Some("2100-01-01")).unwrap();
    c.get("/api/v4/version", &expiring).await.expect(200);
    sim.advance_clock(Duration::from_secs(100 * 366 * 86400));
    let r = c.get("/api/v4/version", &expiring).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"], "invalid_token");
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Token is expired")
    );

    let revoked = sim.create_token(uid, &["api"], None).unwrap();
    sim.revoke_token(&revoked).unwrap();
    let r = c.get("/api/v4/version", &revoked).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("Token was revoked")
    );
}

#[tokio::test]
async fn each_scope_opens_exactly_its_endpoints() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let root = sim.admin_user_id();
    let create_only = sim.create_token(root, &["create_runner"], None).unwrap();
    let manage_only = sim.create_token(root, &["manage_runner"], None).unwrap();
    let read_api = sim.create_token(root, &["read_api"], None).unwrap();
    let app = project(&sim, "acme/app");
    let body = json!({"runner_type": "project_type", "project_id": app});

    // create_runner: creating only.
    let (id, _) = c.create_runner(&create_only, body.clone()).await;
    for path in [
        "/api/v4/runners".to_string(),
        "/api/v4/version".to_string(),
        format!("/api/v4/runners/{id}"),
    ] {
        let r = c.get(&path, &create_only).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert_eq!(r.body["error"], "insufficient_scope");
        assert!(r.body["scope"].as_str().unwrap().contains("api"));
    }
    // ...but a token can always describe itself.
    let me = c
        .get("/api/v4/personal_access_tokens/self", &create_only)
        .await;
    assert_eq!(me.expect(200)["scopes"], json!(["create_runner"]));
    assert_eq!(me.body["active"], true);
    assert_eq!(me.body["expires_at"], Value::Null);

    // read_api: lists and reads, never writes.
    let r = c
        .post("/api/v4/user/runners", Some(&read_api), body.clone())
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "insufficient_scope");
    c.get("/api/v4/runners/all", &read_api).await.expect(200);
    c.get(&format!("/api/v4/runners/{id}"), &read_api)
        .await
        .expect(200);
    let r = c
        .put(
            &format!("/api/v4/runners/{id}"),
            &read_api,
            json!({"paused": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "insufficient_scope");

    // manage_runner: only /runners/:id...
    c.get(&format!("/api/v4/runners/{id}"), &manage_only)
        .await
        .expect(200);
    c.get(&format!("/api/v4/runners/{id}/managers"), &manage_only)
        .await
        .expect(200);
    c.put(
        &format!("/api/v4/runners/{id}"),
        &manage_only,
        json!({"description": "m"}),
    )
    .await
    .expect(200);
    let reset = c
        .post(
            &format!("/api/v4/runners/{id}/reset_authentication_token"),
            Some(&manage_only),
            json!({}),
        )
        .await;
    reset.expect(201);
    for path in ["/api/v4/runners", "/api/v4/runners/all", "/api/v4/version"] {
        let r = c.get(path, &manage_only).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.body["error"], "insufficient_scope");
    }
    let r = c
        .post("/api/v4/user/runners", Some(&manage_only), body)
        .await;
    assert_eq!(r.status, 403);
    c.delete(&format!("/api/v4/runners/{id}"), Some(&manage_only), None)
        .await
        .expect(204);
    c.get("/api/v4/version", &admin).await.expect(200);
}

#[tokio::test]
async fn roles_decide_who_creates_reads_updates_and_deletes() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let acme = group(&sim, "acme");
    let (dev_id, dev) = sim.user_with_token("dev", &["api"]).unwrap();
    let (maint_id, maint) = sim.user_with_token("maint", &["api"]).unwrap();
    let (owner_id, owner) = sim.user_with_token("owner", &["api"]).unwrap();
    let (_, stranger) = sim.user_with_token("stranger", &["api"]).unwrap();
    sim.add_member(dev_id, MemberOf::Project(app), Role::Developer)
        .unwrap();
    sim.add_member(maint_id, MemberOf::Project(app), Role::Maintainer)
        .unwrap();
    sim.add_member(owner_id, MemberOf::Group(acme), Role::Owner)
        .unwrap();

    let project_body = json!({"runner_type": "project_type", "project_id": app});
    let group_body = json!({"runner_type": "group_type", "group_id": acme});
    let insufficient = json!({"message": "403 Forbidden - Insufficient permissions"});

    let r = c
        .post("/api/v4/user/runners", Some(&dev), project_body.clone())
        .await;
    assert_eq!((r.status, &r.body), (403, &insufficient));
    let (pid, _) = c.create_runner(&maint, project_body.clone()).await;
    let r = c
        .post("/api/v4/user/runners", Some(&maint), group_body.clone())
        .await;
    assert_eq!((r.status, &r.body), (403, &insufficient));
    let (gid, _) = c.create_runner(&owner, group_body).await;
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&owner),
            json!({"runner_type": "instance_type"}),
        )
        .await;
    assert_eq!((r.status, &r.body), (403, &insufficient));
    // A group owner is Maintainer+ of the group's projects too.
    c.create_runner(&owner, project_body).await;

    let no_access = json!({"message": "403 Forbidden - No access granted"});
    for token in [&dev, &stranger] {
        let r = c.get(&format!("/api/v4/runners/{pid}"), token).await;
        assert_eq!((r.status, &r.body), (403, &no_access));
        let r = c
            .put(
                &format!("/api/v4/runners/{pid}"),
                token,
                json!({"paused": true}),
            )
            .await;
        assert_eq!((r.status, &r.body), (403, &no_access));
        let r = c
            .delete(&format!("/api/v4/runners/{pid}"), Some(token), None)
            .await;
        assert_eq!((r.status, &r.body), (403, &no_access));
    }
    // A project's Maintainer has no say over its group's runners.
    let r = c.get(&format!("/api/v4/runners/{gid}"), &maint).await;
    assert_eq!(r.status, 403);
    let r = c
        .put(
            &format!("/api/v4/runners/{gid}"),
            &maint,
            json!({"paused": true}),
        )
        .await;
    assert_eq!(r.status, 403);
    c.put(
        &format!("/api/v4/runners/{gid}"),
        &owner,
        json!({"paused": true}),
    )
    .await
    .expect(200);

    // maintenance_note only for callers who may update.
    c.put(
        &format!("/api/v4/runners/{pid}"),
        &maint,
        json!({"maintenance_note": "disk"}),
    )
    .await
    .expect(200);
    // /runners/all is for admins; /runners lists what the user owns.
    let r = c.get("/api/v4/runners/all", &maint).await;
    assert_eq!(
        (r.status, &r.body),
        (403, &json!({"message": "403 Forbidden"}))
    );
    let mine = c.get("/api/v4/runners", &maint).await;
    assert!(ids(mine.expect(200)).contains(&pid));
    assert!(!ids(&mine.body).contains(&gid));
    let mine = c.get("/api/v4/runners", &owner).await;
    assert!(ids(mine.expect(200)).contains(&gid));
    let r = c.get("/api/v4/runners", &stranger).await;
    assert_eq!(r.expect(200), &json!([]));

    // Instance runners are readable by anyone signed in.
    let (iid, _) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    let r = c.get(&format!("/api/v4/runners/{iid}"), &stranger).await;
    assert_eq!(r.expect(200)["is_shared"], true);
    let r = c
        .delete(&format!("/api/v4/runners/{iid}"), Some(&owner), None)
        .await;
    assert_eq!(r.status, 403);

    c.delete(&format!("/api/v4/runners/{pid}"), Some(&maint), None)
        .await
        .expect(204);
}

#[tokio::test]
async fn restricted_runner_creation_leaves_only_admins() {
    let (sim, c) = start();
    let app = project(&sim, "acme/app");
    let (uid, maint) = sim.user_with_token("maint", &["api"]).unwrap();
    sim.add_member(uid, MemberOf::Project(app), Role::Maintainer)
        .unwrap();
    sim.configure(|s| s.restrict_project_runner_creation = true);
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&maint),
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;
    assert_eq!(r.status, 403);
    c.create_runner(
        &sim.admin_token(),
        json!({"runner_type": "project_type", "project_id": app}),
    )
    .await;
}

// ---- parameters and validation ---------------------------------------------------------

#[tokio::test]
async fn create_parameters_are_validated_like_grape_and_the_model() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let post = |body: Value| c.post("/api/v4/user/runners", Some(&admin), body);

    let r = post(json!({})).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "runner_type is missing"}))
    );
    let r = post(json!({"runner_type": "shared"})).await;
    assert_eq!(
        r.body,
        json!({"error": "runner_type does not have a valid value"})
    );
    let r = post(json!({"runner_type": "project_type"})).await;
    assert_eq!(r.body, json!({"error": "project_id is missing"}));
    let r = post(json!({"runner_type": "group_type"})).await;
    assert_eq!(r.body, json!({"error": "group_id is missing"}));
    let r = post(json!({"runner_type": "project_type", "project_id": "acme/app"})).await;
    assert_eq!(r.body, json!({"error": "project_id is invalid"}));
    let r = post(json!({"runner_type": "project_type", "project_id": app, "paused": "sometimes"}))
        .await;
    assert_eq!(r.body, json!({"error": "paused is invalid"}));
    let r = post(json!({"runner_type": "project_type", "project_id": app, "access_level": "all"}))
        .await;
    assert_eq!(
        r.body,
        json!({"error": "access_level does not have a valid value"})
    );

    let r = post(json!({"runner_type": "project_type", "project_id": 999_999})).await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({"message": "400 Bad request - Missing/invalid project"})
        )
    );
    let r = post(json!({"runner_type": "group_type", "group_id": 999_999})).await;
    assert_eq!(
        r.body,
        json!({"message": "400 Bad request - Missing/invalid group"})
    );

    let r = post(json!({"runner_type": "project_type", "project_id": app, "run_untagged": false}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({"message": "400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs"})
        )
    );
    let r = post(
        json!({"runner_type": "project_type", "project_id": app, "maximum_timeout": 599,
                        "description": "x".repeat(1025)}),
    )
    .await;
    assert_eq!(
        r.body["message"],
        "400 Bad request - Description is too long (maximum is 1024 characters) and Maximum timeout needs to be at least 10 minutes"
    );
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let r = post(json!({"runner_type": "project_type", "project_id": app, "tag_list": many})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("Too many tags")
    );
    assert!(
        sim.runners().is_empty(),
        "nothing was created by a failed request"
    );
}

#[tokio::test]
async fn update_replaces_tags_and_reports_model_errors() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let (id, _) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": app, "tag_list": ["a", "b"]}),
        )
        .await;
    let path = format!("/api/v4/runners/{id}");

    let r = c.put(&path, &admin, json!({"tag_list": ["c"]})).await;
    assert_eq!(
        r.expect(200)["tag_list"],
        json!(["c"]),
        "tag_list replaces, never merges"
    );
    let r = c
        .put(
            &path,
            &admin,
            json!({"tag_list": "d,e", "description": "new", "locked": true,
                                        "access_level": "ref_protected", "maximum_timeout": 600,
                                        "maintenance_note": "n"}),
        )
        .await;
    let b = r.expect(200);
    assert_eq!(b["tag_list"], json!(["d", "e"]));
    assert_eq!(b["description"], "new");
    assert_eq!(b["locked"], true);
    assert_eq!(b["access_level"], "ref_protected");
    assert_eq!(b["maintenance_note"], "n");

    let r = c.put(&path, &admin, json!({})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"],
        "description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided"
    );
    let r = c
        .put(&path, &admin, json!({"active": true, "paused": true}))
        .await;
    assert_eq!(
        r.body,
        json!({"error": "active, paused are mutually exclusive"})
    );
    let r = c.put(&path, &admin, json!({"maximum_timeout": 300})).await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({"message": {"maximum_timeout": ["needs to be at least 10 minutes"]}})
        )
    );
    let r = c
        .put(
            &path,
            &admin,
            json!({"tag_list": [], "run_untagged": false}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}})
    );
    let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let r = c.put(&path, &admin, json!({"tag_list": many})).await;
    assert_eq!(
        r.body,
        json!({"message": {"tags_list": ["Too many tags specified. Please limit the number of tags to 50"]}})
    );
    let r = c
        .put("/api/v4/runners/abc", &admin, json!({"paused": true}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "id is invalid"}))
    );
    let r = c
        .put("/api/v4/runners/424242", &admin, json!({"paused": true}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"message": "404 Runner Not Found"}))
    );

    // The deprecated `active` still works, inverted.
    let r = c.put(&path, &admin, json!({"active": false})).await;
    assert_eq!(r.expect(200)["paused"], true);
    let snap = sim.runner(id).unwrap();
    assert_eq!(snap.tag_list, ["d", "e"], "failed updates changed nothing");
}

// ---- legacy registration ---------------------------------------------------------------

#[tokio::test]
async fn legacy_registration_is_gone_by_default() {
    let (sim, c) = start();
    let instance = sim.registration_token(RegistrationScope::Instance).unwrap();
    assert!(instance.starts_with("GR1348941"));
    let gone = json!({"message": "410 Gone - runner registration disallowed"});
    for token in [instance.as_str(), "GR1348941notarealtoken", "garbage"] {
        let r = c
            .post(
                "/api/v4/runners",
                None,
                json!({"token": token, "description": "old"}),
            )
            .await;
        assert_eq!((r.status, &r.body), (410, &gone), "{token}");
    }
    assert!(sim.runners().is_empty());
}

#[tokio::test]
async fn legacy_registration_when_allowed() {
    let (sim, c) = start_with(SimOptions {
        legacy_registration: true,
        ..SimOptions::default()
    });
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let r = c
        .post("/api/v4/runners", None, json!({"token": "GR1348941wrong"}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            403,
            &json!({"message": "403 Forbidden - invalid token supplied"})
        )
    );
    let r = c
        .post("/api/v4/runners", None, json!({"description": "x"}))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "token is missing"}))
    );

    let reg = sim
        .registration_token(RegistrationScope::Project(app))
        .unwrap();
    let r = c
        .post(
            "/api/v4/runners",
            None,
            json!({"token": reg, "description": "legacy", "tag_list": "x,y", "run_untagged": false,
                     "info": {"name": "host-1"}}),
        )
        .await;
    let b = r.expect(201).clone();
    let token = b["token"].as_str().unwrap().to_string();
    assert!(
        token.starts_with("glrtr-"),
        "registered runners get glrtr- tokens"
    );
    let id = b["id"].as_u64().unwrap();
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.body["runner_type"], "project_type");
    assert_eq!(d.body["name"], "host-1");
    assert_eq!(d.body["tag_list"], json!(["x", "y"]));
    // A legacy token's verify counts as contact.
    c.verify(&token, None).await.expect(200);
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.body["status"], "online");
    let m = c
        .get(&format!("/api/v4/runners/{id}/managers"), &admin)
        .await;
    assert_eq!(m.body[0]["system_id"], "<legacy>");

    let r = c
        .post(
            "/api/v4/runners",
            None,
            json!({"token": reg, "run_untagged": false}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}})
        )
    );
    let r = c
        .post(
            "/api/v4/runners",
            None,
            json!({"token": reg, "maintainer_note": "a", "maintenance_note": "b"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"error": "maintainer_note, maintenance_note are mutually exclusive"})
    );

    // The top-level group's setting governs its projects and subgroups.
    let acme = group(&sim, "acme");
    let platform = group(&sim, "acme/platform");
    let greg = sim
        .registration_token(RegistrationScope::Group(platform))
        .unwrap();
    let r = c
        .post("/api/v4/runners", None, json!({"token": greg}))
        .await;
    assert_eq!(
        r.expect(201)["token"].as_str().unwrap().get(..6),
        Some("glrtr-")
    );
    sim.set_group_registration(acme, false).unwrap();
    for t in [&reg, &greg] {
        let r = c.post("/api/v4/runners", None, json!({"token": t})).await;
        assert_eq!(r.status, 410);
    }
    let inst = sim.registration_token(RegistrationScope::Instance).unwrap();
    let r = c
        .post("/api/v4/runners", None, json!({"token": inst}))
        .await;
    assert_eq!(
        r.expect(201)["token"].as_str().unwrap().get(..9),
        Some("glrtr-t1_")
    );

    // Resetting a registration token retires the old one.
    let r = c
        .post(
            "/api/v4/runners/reset_registration_token",
            Some(&admin),
            json!({}),
        )
        .await;
    let new = r.expect(201)["token"].as_str().unwrap().to_string();
    assert!(new.starts_with("GR1348941") && new != inst);
    let r = c
        .post("/api/v4/runners", None, json!({"token": inst}))
        .await;
    assert_eq!(r.status, 403);
}

// ---- deleting, managers, orphans -------------------------------------------------------

#[tokio::test]
async fn deleted_runners_are_404_by_id_and_403_by_token() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let body = json!({"runner_type": "project_type", "project_id": app});

    let (id, token) = c.create_runner(&admin, body.clone()).await;
    c.delete(&format!("/api/v4/runners/{id}"), Some(&admin), None)
        .await
        .expect(204);
    let r = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"message": "404 Runner Not Found"}))
    );
    let r = c
        .delete(&format!("/api/v4/runners/{id}"), Some(&admin), None)
        .await;
    assert_eq!(r.status, 404);
    let r = c.verify(&token, None).await;
    assert_eq!(
        (r.status, &r.body),
        (403, &json!({"message": "403 Forbidden"}))
    );
    let r = c
        .post("/api/v4/jobs/request", None, json!({"token": token}))
        .await;
    assert_eq!(r.status, 403);

    let (id2, token2) = c.create_runner(&admin, body).await;
    let r = c
        .delete("/api/v4/runners", None, Some(json!({"token": token2})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(sim.runner(id2).is_none());
    let r = c
        .delete("/api/v4/runners", None, Some(json!({"token": token2})))
        .await;
    assert_eq!(r.status, 403);
    let r = c.delete("/api/v4/runners", None, Some(json!({}))).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "token is missing"}))
    );
}

#[tokio::test]
async fn unregistering_a_manager_keeps_the_runner() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let (id, token) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": project(&sim, "acme/web")}),
        )
        .await;
    c.verify(&token, Some("s_aaaaaaaaaaaa")).await.expect(200);
    c.verify(&token, Some("s_bbbbbbbbbbbb")).await.expect(200);
    c.verify(&token, Some("s_aaaaaaaaaaaa")).await.expect(200);
    let m = c
        .get(&format!("/api/v4/runners/{id}/managers"), &admin)
        .await;
    assert_eq!(
        m.expect(200).as_array().unwrap().len(),
        2,
        "one manager per system_id"
    );

    let r = c
        .delete(
            "/api/v4/runners/managers",
            None,
            Some(json!({"token": token, "system_id": "s_aaaaaaaaaaaa"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let m = c
        .get(&format!("/api/v4/runners/{id}/managers"), &admin)
        .await;
    let left: Vec<&str> = m
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["system_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["s_bbbbbbbbbbbb"]);
    c.verify(&token, None).await.expect(200);

    let r = c
        .delete(
            "/api/v4/runners/managers",
            None,
            Some(json!({"token": token, "system_id": "s_zzzzzzzzzzzz"})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            404,
            &json!({"message": "404 Runner manager not found Not Found"})
        )
    );
    let r = c
        .delete(
            "/api/v4/runners/managers",
            None,
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "system_id is missing"}))
    );
    let r = c
        .delete(
            "/api/v4/runners/managers",
            None,
            Some(json!({"token": "glrt-nope", "system_id": "s_bbbbbbbbbbbb"})),
        )
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn a_runner_whose_project_is_gone_is_orphaned() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let doomed = sim.create_project("acme/doomed").unwrap();
    let (id, token) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": doomed}),
        )
        .await;
    let (gid, gtoken) = c
        .create_runner(
            &admin,
            json!({"runner_type": "group_type", "group_id": group(&sim, "acme/platform")}),
        )
        .await;
    sim.delete_project(doomed).unwrap();
    sim.delete_group(group(&sim, "acme/platform")).unwrap();
    assert!(
        sim.project_id("acme/platform/infra").is_none(),
        "projects go with their group"
    );
    let orphan = json!({"message": "Runner is orphaned"});
    for t in [&token, &gtoken] {
        let r = c.verify(t, Some("s_cccccccccccc")).await;
        assert_eq!((r.status, &r.body), (422, &orphan));
        let r = c
            .post("/api/v4/jobs/request", None, json!({"token": t}))
            .await;
        assert_eq!((r.status, &r.body), (422, &orphan));
    }
    assert!(sim.runner(id).unwrap().orphaned && sim.runner(gid).unwrap().orphaned);
    c.get(&format!("/api/v4/runners/{id}"), &admin)
        .await
        .expect(200);
    c.delete("/api/v4/runners", None, Some(json!({"token": token})))
        .await;
    assert!(
        sim.runner(id).is_none(),
        "an orphan can still be deleted with its token"
    );
}

#[tokio::test]
async fn shared_project_runners_need_an_admin_to_delete() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let web = project(&sim, "acme/web");
    let (uid, maint) = sim.user_with_token("maint", &["api"]).unwrap();
    sim.add_member(uid, MemberOf::Project(app), Role::Maintainer)
        .unwrap();
    sim.add_member(uid, MemberOf::Project(web), Role::Maintainer)
        .unwrap();
    let (id, _) = c
        .create_runner(
            &maint,
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;
    let r = c
        .post(
            &format!("/api/v4/projects/{web}/runners"),
            Some(&maint),
            json!({"runner_id": id}),
        )
        .await;
    assert_eq!(r.expect(201)["id"], json!(id));
    let r = c
        .post(
            &format!("/api/v4/projects/{web}/runners"),
            Some(&maint),
            json!({"runner_id": id}),
        )
        .await;
    assert_eq!(r.status, 400);
    let listed = c
        .get(&format!("/api/v4/projects/{web}/runners"), &maint)
        .await;
    assert!(ids(listed.expect(200)).contains(&id));

    let r = c
        .delete(&format!("/api/v4/runners/{id}"), Some(&maint), None)
        .await;
    assert_eq!(
        (r.status, &r.body),
        (
            403,
            &json!({"message": "403 Forbidden - Runner associated with more than one project"})
        )
    );
    c.delete(
        &format!("/api/v4/projects/{web}/runners/{id}"),
        Some(&maint),
        None,
    )
    .await
    .expect(204);
    let r = c
        .delete(
            &format!("/api/v4/projects/{app}/runners/{id}"),
            Some(&maint),
            None,
        )
        .await;
    assert_eq!(
        r.body,
        json!({"message": "403 Forbidden - Only one project associated with the runner. Please remove the runner instead"})
    );
    c.delete(&format!("/api/v4/runners/{id}"), Some(&maint), None)
        .await
        .expect(204);

    // An administrator may delete a runner shared by several projects.
    let (shared, _) = c
        .create_runner(
            &maint,
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;
    c.post(
        &format!("/api/v4/projects/{web}/runners"),
        Some(&maint),
        json!({"runner_id": shared}),
    )
    .await
    .expect(201);
    c.delete(&format!("/api/v4/runners/{shared}"), Some(&admin), None)
        .await
        .expect(204);

    // Locked runners and group runners cannot be assigned.
    let (locked, _) = c
        .create_runner(
            &maint,
            json!({"runner_type": "project_type", "project_id": app, "locked": true}),
        )
        .await;
    let r = c
        .post(
            &format!("/api/v4/projects/{web}/runners"),
            Some(&maint),
            json!({"runner_id": locked}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"message": "403 Forbidden - Runner is locked"})
    );
    let (grp, _) = c
        .create_runner(
            &sim.admin_token(),
            json!({"runner_type": "group_type", "group_id": group(&sim, "acme")}),
        )
        .await;
    let r = c
        .post(
            &format!("/api/v4/projects/{web}/runners"),
            Some(&maint),
            json!({"runner_id": grp}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"message": "403 Forbidden - Runner is a group runner"})
    );
}

#[tokio::test]
async fn if_unmodified_since_guards_deletes() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let (id, _) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    let res = plain()
        .delete(format!("{}/api/v4/runners/{id}", sim.url()))
        .header("PRIVATE-TOKEN", &admin)
        .header("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    assert!(sim.runner(id).is_some());
}

// ---- token reset and expiry ------------------------------------------------------------

#[tokio::test]
async fn a_reset_token_replaces_the_old_one_at_once() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let (id, t0) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;

    let r = c
        .post(
            &format!("/api/v4/runners/{id}/reset_authentication_token"),
            Some(&admin),
            json!({}),
        )
        .await;
    let t1 = r.expect(201)["token"].as_str().unwrap().to_string();
    assert!(t1.starts_with("glrt-t3_") && t1 != t0);
    assert!(r.body.get("token_expires_at").is_some());
    assert_eq!(c.verify(&t0, None).await.status, 403);
    assert_eq!(c.verify(&t1, None).await.expect(200)["id"], json!(id));

    let r = c
        .post(
            "/api/v4/runners/reset_authentication_token",
            None,
            json!({"token": t1}),
        )
        .await;
    let t2 = r.expect(201)["token"].as_str().unwrap().to_string();
    assert_eq!(c.verify(&t1, None).await.status, 403);
    c.verify(&t2, None).await.expect(200);
    let r = c
        .post(
            "/api/v4/runners/reset_authentication_token",
            None,
            json!({"token": t1}),
        )
        .await;
    assert_eq!(r.status, 403);

    // Someone resets it in the UI: the client's copy dies.
    let t3 = sim.reset_runner_token(id).unwrap();
    assert_eq!(c.verify(&t2, None).await.status, 403);
    c.verify(&t3, None).await.expect(200);
    let r = c
        .post(
            "/api/v4/runners/424242/reset_authentication_token",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn token_expiry_follows_settings_and_the_clock() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    sim.configure(|s| s.project_token_expiration = Some(3 * 3600));
    let app = project(&sim, "acme/app");
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&admin),
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;
    let b = r.expect(201).clone();
    assert!(b["token_expires_at"].is_string());
    let token = b["token"].as_str().unwrap();
    let id = b["id"].as_u64().unwrap();
    c.verify(token, None).await.expect(200);
    c.post("/api/v4/jobs/request", None, json!({"token": token}))
        .await;
    assert_eq!(sim.runner(id).unwrap().status, "online");

    sim.advance_clock(Duration::from_secs(2 * 3600 + 60));
    assert_eq!(sim.runner(id).unwrap().status, "offline");
    c.verify(token, None).await.expect(200);
    sim.advance_clock(Duration::from_secs(3600));
    let r = c.verify(token, None).await;
    assert_eq!(r.status, 403, "an expired token is dead everywhere");
    assert_eq!(
        c.post("/api/v4/jobs/request", None, json!({"token": token}))
            .await
            .status,
        403
    );
    // The runner survives; resetting by id revives it with a fresh expiry.
    let r = c
        .post(
            &format!("/api/v4/runners/{id}/reset_authentication_token"),
            Some(&admin),
            json!({}),
        )
        .await;
    let fresh = r.expect(201)["token"].as_str().unwrap().to_string();
    c.verify(&fresh, None).await.expect(200);

    sim.advance_clock(Duration::from_secs(8 * 86400));
    let stale = c.get("/api/v4/runners/all?status=stale", &admin).await;
    assert_eq!(ids(stale.expect(200)), [id]);
    assert_eq!(stale.body[0]["status"], "stale");
}

#[tokio::test]
async fn explicit_token_expiry_and_rotation_deadline() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let soon = |secs: u64| {
        let t = std::time::SystemTime::now() + Duration::from_secs(secs);
        let s = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        // Format as ISO 8601 through the simulator's own clock helper.
        runnerform::sim::clock::iso(s * 1000)
    };
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&admin),
            json!({"runner_type": "project_type", "project_id": app, "token_expires_at": soon(60)}),
        )
        .await;
    assert_eq!(r.status, 400, "less than 5 minutes ahead: {}", r.text);
    let expiry = soon(86400);
    let r = c
        .post(
            "/api/v4/user/runners",
            Some(&admin),
            json!({"runner_type": "project_type", "project_id": app, "token_expires_at": expiry,
                     "token_rotation_deadline": expiry}),
        )
        .await;
    let b = r.expect(201).clone();
    assert_eq!(b["token_expires_at"], json!(expiry));
    let id = b["id"].as_u64().unwrap();
    let r = c
        .post(
            &format!("/api/v4/runners/{id}/reset_authentication_token"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 422, "equal deadline and expiry disable rotation");
}

// ---- lists: filters, pagination, projects and groups -----------------------------------

#[tokio::test]
async fn lists_are_paginated_with_gitlab_headers() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    for _ in 0..7 {
        c.create_runner(&admin, json!({"runner_type": "instance_type"}))
            .await;
    }
    let r = c
        .get(
            "/api/v4/runners/all?per_page=3&page=2&type=instance_type",
            &admin,
        )
        .await;
    assert_eq!(r.expect(200).as_array().unwrap().len(), 3);
    assert_eq!(ids(&r.body), [4, 5, 6], "ordered by id");
    assert_eq!(r.header("x-total"), "7");
    assert_eq!(r.header("x-total-pages"), "3");
    assert_eq!(r.header("x-page"), "2");
    assert_eq!(r.header("x-per-page"), "3");
    assert_eq!(r.header("x-next-page"), "3");
    assert_eq!(r.header("x-prev-page"), "1");
    let link = r.header("link");
    let base = format!("{}/api/v4/runners/all?", sim.url());
    for rel in ["prev", "next", "first", "last"] {
        assert!(link.contains(&format!("; rel=\"{rel}\"")), "{link}");
    }
    assert!(
        link.contains(&format!(
            "<{base}type=instance_type&page=3&per_page=3>; rel=\"next\""
        )),
        "{link}"
    );
    assert!(
        link.contains(&format!(
            "<{base}type=instance_type&page=1&per_page=3>; rel=\"prev\""
        )),
        "{link}"
    );

    let last = c.get("/api/v4/runners/all?per_page=3&page=3", &admin).await;
    assert_eq!(ids(last.expect(200)), [7]);
    assert_eq!(last.header("x-next-page"), "");
    assert!(!last.header("link").contains("rel=\"next\""));

    // Following Link rel="next" from the first page visits everything once.
    let mut seen = Vec::new();
    let mut url = format!("{}/api/v4/runners/all?per_page=2", sim.url());
    loop {
        let res = plain()
            .get(&url)
            .header("PRIVATE-TOKEN", &admin)
            .send()
            .await
            .unwrap();
        let next = res
            .headers()
            .get("link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| {
                l.split(", ")
                    .find(|p| p.ends_with("rel=\"next\""))
                    .map(|p| p[1..p.find('>').unwrap()].to_string())
            });
        seen.extend(ids(&res.json::<Value>().await.unwrap()));
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(seen, (1..=7).collect::<Vec<u64>>());

    // As on GitLab.com for big collections: no totals, only the way forward.
    sim.configure(|s| s.omit_pagination_totals = true);
    let r = c.get("/api/v4/runners/all?per_page=3", &admin).await;
    assert!(r.headers.get("x-total").is_none() && r.headers.get("x-total-pages").is_none());
    assert_eq!(r.header("x-next-page"), "2");
    assert!(!r.header("link").contains("rel=\"last\""));
    sim.configure(|s| s.omit_pagination_totals = false);

    let r = c.get("/api/v4/runners/all?per_page=1000", &admin).await;
    assert_eq!(r.header("x-per-page"), "100");
    let r = c.get("/api/v4/runners/all?page=9", &admin).await;
    assert_eq!(r.expect(200), &json!([]));
    let r = c.get("/api/v4/runners/all?page=two", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "page is invalid"}))
    );
    let r = c.get("/api/v4/runners/all?type=nope", &admin).await;
    assert_eq!(r.body, json!({"error": "type does not have a valid value"}));
}

#[tokio::test]
async fn list_filters_select_by_type_status_paused_tags_and_version() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let app = project(&sim, "acme/app");
    let acme = group(&sim, "acme");
    let (a, ta) = c
        .create_runner(&admin, json!({"runner_type": "project_type", "project_id": app, "tag_list": ["docker", "linux"]}))
        .await;
    let (b, _) = c
        .create_runner(&admin, json!({"runner_type": "group_type", "group_id": acme, "tag_list": ["docker"], "paused": true}))
        .await;
    let (i, ti) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    c.post(
        "/api/v4/jobs/request",
        None,
        json!({"token": ta, "info": {"version": "17.11.1"}}),
    )
    .await;
    c.post(
        "/api/v4/jobs/request",
        None,
        json!({"token": ti, "info": {"version": "18.2.0"}}),
    )
    .await;
    sim.advance_clock(Duration::from_secs(3 * 3600));
    c.post("/api/v4/jobs/request", None, json!({"token": ti}))
        .await;

    let q = |query: &str| {
        let path = format!("/api/v4/runners/all?{query}");
        let c = &c;
        let admin = admin.clone();
        async move { ids(c.get(&path, &admin).await.expect(200)) }
    };
    assert_eq!(q("type=project_type").await, [a]);
    assert_eq!(q("type=group_type").await, [b]);
    assert_eq!(q("status=online").await, [i]);
    assert_eq!(q("status=offline").await, [a]);
    assert_eq!(q("status=never_contacted").await, [b]);
    assert_eq!(q("paused=true").await, [b]);
    assert_eq!(q("paused=false").await, [a, i]);
    assert_eq!(q("tag_list=docker").await, [a, b]);
    assert_eq!(q("tag_list=docker,linux").await, [a]);
    assert_eq!(q("tag_list=linux,gpu").await, Vec::<u64>::new());
    assert_eq!(q("version_prefix=17.").await, [a]);
    assert_eq!(q("version_prefix=18").await, [i]);
    assert_eq!(q("scope=shared").await, [i]);
    assert_eq!(q("scope=specific").await, [a, b]);
    assert_eq!(q("scope=paused").await, [b]);

    let r = c
        .get("/api/v4/runners/all?version_prefix=v17", &admin)
        .await;
    assert_eq!(r.body, json!({"error": "version_prefix is invalid"}));
    let r = c.get("/api/v4/runners/all?status=busy", &admin).await;
    assert_eq!(
        r.body,
        json!({"error": "status does not have a valid value"})
    );
    let r = c.get("/api/v4/runners/all?scope=busy", &admin).await;
    assert_eq!(
        r.body,
        json!({"error": "scope does not have a valid value"})
    );
    // /runners accepts only status-like scopes.
    let r = c.get("/api/v4/runners?scope=specific", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"message": "Scope contains invalid value"}))
    );
    let r = c.get("/api/v4/runners?type=group_type", &admin).await;
    assert_eq!(
        ids(r.expect(200)),
        [b],
        "root owns acme, so its group runner is listed"
    );
}

#[tokio::test]
async fn project_and_group_lists_include_inherited_runners() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let acme = group(&sim, "acme");
    let platform = group(&sim, "acme/platform");
    let infra = project(&sim, "acme/platform/infra");
    let app = project(&sim, "acme/app");
    let (top, _) = c
        .create_runner(
            &admin,
            json!({"runner_type": "group_type", "group_id": acme}),
        )
        .await;
    let (sub, _) = c
        .create_runner(
            &admin,
            json!({"runner_type": "group_type", "group_id": platform}),
        )
        .await;
    let (own, _) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": infra}),
        )
        .await;
    // Another project's runner, which no list below may show.
    c.create_runner(
        &admin,
        json!({"runner_type": "project_type", "project_id": app}),
    )
    .await;
    let (shared, _) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;

    let by_path = c
        .get("/api/v4/projects/acme%2Fplatform%2Finfra/runners", &admin)
        .await;
    assert_eq!(ids(by_path.expect(200)), [top, sub, own, shared]);
    let by_id = c
        .get(
            &format!("/api/v4/projects/{infra}/runners?type=project_type"),
            &admin,
        )
        .await;
    assert_eq!(ids(by_id.expect(200)), [own]);
    let g = c
        .get("/api/v4/groups/acme%2Fplatform/runners", &admin)
        .await;
    assert_eq!(ids(g.expect(200)), [top, sub, shared]);
    let g = c
        .get(
            &format!("/api/v4/groups/{acme}/runners?type=group_type"),
            &admin,
        )
        .await;
    assert_eq!(ids(g.expect(200)), [top]);
    let r = c
        .get(&format!("/api/v4/groups/{acme}/runners?scope=nope"), &admin)
        .await;
    assert_eq!(r.status, 200, "groups have no scope filter");

    let p = c.get("/api/v4/projects/acme%2Fapp", &admin).await;
    assert_eq!(p.expect(200)["id"], json!(app));
    assert_eq!(p.body["namespace"]["full_path"], "acme");
    let gr = c.get("/api/v4/groups/acme%2Fplatform", &admin).await;
    assert_eq!(gr.expect(200)["id"], json!(platform));
    assert_eq!(gr.body["parent_id"], json!(acme));

    let r = c.get("/api/v4/projects/acme%2Fnope", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"message": "404 Project Not Found"}))
    );
    let r = c.get("/api/v4/projects/999999/runners", &admin).await;
    assert_eq!(r.body, json!({"message": "404 Project Not Found"}));
    let r = c.get("/api/v4/groups/nope/runners", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"message": "404 Group Not Found"}))
    );

    // Private to outsiders (404), forbidden to members below Maintainer (403).
    let (uid, dev) = sim.user_with_token("dev", &["api"]).unwrap();
    let (_, stranger) = sim.user_with_token("stranger", &["read_api"]).unwrap();
    sim.add_member(uid, MemberOf::Project(app), Role::Developer)
        .unwrap();
    let r = c.get("/api/v4/projects/acme%2Fapp", &stranger).await;
    assert_eq!(r.status, 404);
    c.get("/api/v4/projects/acme%2Fapp", &dev).await.expect(200);
    let r = c.get("/api/v4/projects/acme%2Fapp/runners", &dev).await;
    assert_eq!(
        (r.status, &r.body),
        (403, &json!({"message": "403 Forbidden"}))
    );
    c.get("/api/v4/groups/acme", &dev).await.expect(200);
    let r = c.get("/api/v4/groups/acme/runners", &dev).await;
    assert_eq!(r.status, 403);
}

// ---- faults, latency, drift, request log -----------------------------------------------

#[tokio::test]
async fn injected_faults_fire_the_set_number_of_times() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let body = json!({"runner_type": "instance_type"});

    sim.inject(
        Fault::new(
            "/api/v4/user/runners",
            FaultKind::RateLimited { retry_after: 7 },
        )
        .method("POST"),
    );
    let r = c
        .post("/api/v4/user/runners", Some(&admin), body.clone())
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), "7");
    assert!(r.body["message"].is_string());
    assert!(
        sim.runners().is_empty(),
        "a rejected request changes nothing"
    );
    c.create_runner(&admin, body.clone()).await;

    sim.inject(Fault::new(
        "/api/v4/runners/*",
        FaultKind::Throttled { retry_after: 3 },
    ));
    let r = c.get("/api/v4/runners/1", &admin).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.text, "Retry later\n");
    assert_eq!(r.header("retry-after"), "3");
    assert_eq!(r.header("ratelimit-remaining"), "0");
    assert!(r.header("ratelimit-resettime").ends_with("GMT"));

    sim.inject(Fault::new("/api/v4/version", FaultKind::Status { status: 503 }).times(2));
    assert_eq!(c.get("/api/v4/version", &admin).await.status, 503);
    let r = c.get("/api/v4/version", &admin).await;
    assert_eq!(r.status, 503);
    assert!(r.text.contains("503 Service Unavailable"));
    c.get("/api/v4/version", &admin).await.expect(200);
    sim.inject(Fault::new(
        "/api/v4/version",
        FaultKind::Status { status: 500 },
    ));
    let r = c.get("/api/v4/version", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (500, &json!({"message": "500 Internal Server Error"}))
    );

    // A dropped connection before GitLab saw the request: nothing happened.
    sim.inject(Fault::new("/api/v4/user/runners", FaultKind::Drop));
    let e = c
        .try_send(
            Method::POST,
            "/api/v4/user/runners",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert!(e.is_err(), "the connection was dropped: {e:?}");
    assert_eq!(sim.runners().len(), 1);
    // ...and after: the runner exists but the client never learnt its token.
    sim.inject(Fault::new("/api/v4/user/runners", FaultKind::Drop).after());
    let e = c
        .try_send(
            Method::POST,
            "/api/v4/user/runners",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert!(e.is_err());
    assert_eq!(sim.runners().len(), 2);
    sim.inject(Fault::new("/api/v4/user/runners", FaultKind::Status { status: 502 }).after());
    let r = c
        .post("/api/v4/user/runners", Some(&admin), body.clone())
        .await;
    assert_eq!(r.status, 502);
    assert_eq!(sim.runners().len(), 3);

    sim.inject(Fault::new("/api/v4/user/runners", FaultKind::MalformedJson).after());
    let r = c
        .post("/api/v4/user/runners", Some(&admin), body.clone())
        .await;
    assert_eq!(r.status, 200);
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "cut short: {}",
        r.text
    );
    assert_eq!(sim.runners().len(), 4);

    let log = sim.requests();
    let faults: Vec<&str> = log.iter().filter_map(|e| e.fault.as_deref()).collect();
    assert!(faults.contains(&"drop (after handling)"), "{faults:?}");
    let dropped = log
        .iter()
        .find(|e| e.fault.as_deref() == Some("drop"))
        .unwrap();
    assert_eq!((dropped.status, dropped.changed), (None, false));
    let after = log
        .iter()
        .find(|e| e.fault.as_deref() == Some("drop (after handling)"))
        .unwrap();
    assert_eq!((after.status, after.changed), (None, true));
    assert!(sim.faults().is_empty(), "all used up");
}

#[tokio::test]
async fn injected_latency_delays_matching_requests() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    sim.set_latency("/api/v4/version", Duration::from_millis(300));
    let t = Instant::now();
    c.get("/api/v4/version", &admin).await.expect(200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    c.get("/api/v4/user", &admin).await.expect(200);
    assert!(t.elapsed() < Duration::from_millis(300));
    sim.clear_faults();
    let t = Instant::now();
    c.get("/api/v4/version", &admin).await.expect(200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn ui_changes_show_up_as_remote_drift() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let (id, token) = c
        .create_runner(
            &admin,
            json!({"runner_type": "project_type", "project_id": project(&sim, "acme/app"),
                                      "tag_list": ["a"], "description": "ci"}),
        )
        .await;
    sim.edit_runner(
        id,
        &RunnerEdit {
            tag_list: Some(vec!["b".into(), "c".into()]),
            paused: Some(true),
            description: Some("changed by hand".into()),
            ..RunnerEdit::default()
        },
    )
    .unwrap();
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    let d = d.expect(200);
    assert_eq!(d["tag_list"], json!(["b", "c"]));
    assert_eq!(d["paused"], true);
    assert_eq!(d["description"], "changed by hand");
    let bad = sim.edit_runner(
        id,
        &RunnerEdit {
            maximum_timeout: Some(10),
            ..RunnerEdit::default()
        },
    );
    assert!(bad.is_err(), "the UI validates too");

    sim.delete_runner(id).unwrap();
    assert_eq!(
        c.get(&format!("/api/v4/runners/{id}"), &admin).await.status,
        404
    );
    assert_eq!(c.verify(&token, None).await.status, 403);
}

#[tokio::test]
async fn the_request_log_masks_tokens_and_marks_writes() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let (id, token) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    c.verify(&token, Some("s_dddddddddddd")).await;
    c.verify("glrt-wrong", None).await;
    plain()
        .get(format!(
            "{}/api/v4/runners/{id}?private_token={admin}",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    plain()
        .get(format!(
            "{}/api/v4/runners/all?token={token}&x=glpat-abcdefabcdef",
            sim.url()
        ))
        .send()
        .await
        .unwrap();
    plain()
        .get(format!("{}/-/sim/requests", sim.url()))
        .send()
        .await
        .unwrap();

    let log = sim.requests();
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        unmasked_token(&text).is_none(),
        "a token leaked into the log: {text}"
    );
    assert!(!text.contains(&admin[6..]) && !text.contains(&token[8..]));
    assert_eq!(log.len(), 5, "control requests are not logged: {log:#?}");
    let create = &log[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/api/v4/user/runners")
    );
    assert_eq!(
        (create.status, create.write, create.changed),
        (Some(201), true, true)
    );
    assert_eq!(
        (log[1].status, log[1].write, log[1].changed),
        (Some(200), true, true)
    );
    assert_eq!(
        (log[2].status, log[2].write, log[2].changed),
        (Some(403), true, false)
    );
    assert_eq!(
        (log[3].status, log[3].write, log[3].changed),
        (Some(200), false, false)
    );
    assert!(
        log[3].path.contains("private_token=%5BMASKED%5D"),
        "{}",
        log[3].path
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_like_grape() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let r = c.get("/api/v4/runnerz", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({"error": "404 Not Found"}))
    );
    let r = c
        .send(Method::PATCH, "/api/v4/runners/1", Some(&admin), None)
        .await;
    assert_eq!(r.status, 405);
    let r = c.get("/api/v4/runners/verify", &admin).await;
    assert_eq!(
        (r.status, &r.body),
        (400, &json!({"error": "id is invalid"}))
    );
    let r = c
        .send(Method::POST, "/api/v4/runners/verify", None, None)
        .await;
    assert_eq!(r.body, json!({"error": "token is missing"}));
    let res = plain()
        .post(format!("{}/api/v4/runners/verify", sim.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn current_user_and_version_describe_the_instance() {
    let (sim, c) = start();
    let admin = sim.admin_token();
    let v = c.get("/api/v4/version", &admin).await;
    let v = v.expect(200);
    assert!(v["version"].as_str().unwrap().starts_with("18."));
    assert_eq!(v["enterprise"], true);
    assert!(v["kas"].is_object());
    let u = c.get("/api/v4/user", &admin).await;
    assert_eq!(u.expect(200)["is_admin"], true);
    assert_eq!(u.body["username"], "root");
    let (_, reader) = sim.user_with_token("reader", &["read_user"]).unwrap();
    c.get("/api/v4/version", &reader).await.expect(200);
    assert_eq!(c.get("/api/v4/runners", &reader).await.status, 403);
}

// ---- the command -----------------------------------------------------------------------

#[tokio::test]
async fn runnerform_sim_prints_one_json_line_serves_and_stops_on_sigterm() {
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&["-v"]);
    let line: Value = serde_json::from_str(&sim.first_line).unwrap();
    assert_eq!(line.as_object().unwrap().len(), 2, "{line}");
    assert!(sim.url.starts_with("http://127.0.0.1:"));
    assert!(sim.admin_token.starts_with("glpat-"));
    let c = Client::new(&sim.url);
    c.get("/api/v4/version", &sim.admin_token).await.expect(200);

    // Steered from another process through /-/sim/.
    let u = c
        .post("/-/sim/users", None, json!({"username": "ops"}))
        .await;
    let uid = u.expect(201)["id"].as_u64().unwrap();
    let t = c
        .post(
            &format!("/-/sim/users/{uid}/tokens"),
            None,
            json!({"scopes": ["create_runner"]}),
        )
        .await;
    let ops = t.expect(201)["token"].as_str().unwrap().to_string();
    let app = c
        .get("/api/v4/projects/acme%2Fapp", &sim.admin_token)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    c.post(
        "/-/sim/members",
        None,
        json!({"user_id": uid, "project_id": app, "role": "maintainer"}),
    )
    .await
    .expect(201);
    let (id, token) = c
        .create_runner(
            &ops,
            json!({"runner_type": "project_type", "project_id": app}),
        )
        .await;
    c.post(
        "/-/sim/faults",
        None,
        json!({"path": "/api/v4/runners/verify", "kind": "rate_limited", "retry_after": 2}),
    )
    .await
    .expect(201);
    let r = c.verify(&token, None).await;
    assert_eq!((r.status, r.header("retry-after")), (429, "2".to_string()));
    c.verify(&token, None).await.expect(200);
    let edited = c
        .send(
            Method::PATCH,
            &format!("/-/sim/runners/{id}"),
            None,
            Some(json!({"tag_list": ["drift"]})),
        )
        .await;
    assert_eq!(edited.expect(200)["tag_list"], json!(["drift"]));
    let now = c
        .post("/-/sim/clock/advance", None, json!({"seconds": 86400}))
        .await;
    assert!(now.expect(200)["now"].is_string());
    let reset = c
        .post(&format!("/-/sim/runners/{id}/reset_token"), None, json!({}))
        .await;
    assert!(
        reset.expect(201)["token"]
            .as_str()
            .unwrap()
            .starts_with("glrt-")
    );
    assert_eq!(c.verify(&token, None).await.status, 403);
    let log = c.send(Method::GET, "/-/sim/requests", None, None).await;
    assert!(log.expect(200).as_array().unwrap().len() >= 5);
    assert!(unmasked_token(&log.text).is_none(), "{}", log.text);
    let over = c.send(Method::GET, "/-/sim", None, None).await;
    assert_eq!(over.expect(200)["settings"]["legacy_registration"], false);
    let r = c
        .send(
            Method::PUT,
            "/-/sim/settings",
            None,
            Some(json!({"legacy_registration": true})),
        )
        .await;
    assert_eq!(r.expect(200)["legacy_registration"], true);
    let r = c
        .send(
            Method::PUT,
            "/-/sim/settings",
            None,
            Some(json!({"legacy_registraton": true})),
        )
        .await;
    assert_eq!(r.status, 400, "misspelt settings are refused");
    let reg = c
        .send(
            Method::GET,
            &format!("/-/sim/registration_token?project_id={app}"),
            None,
            None,
        )
        .await;
    let reg = reg.expect(200)["token"].as_str().unwrap().to_string();
    let r = c.post("/api/v4/runners", None, json!({"token": reg})).await;
    assert!(
        r.expect(201)["token"]
            .as_str()
            .unwrap()
            .starts_with("glrtr-t3_")
    );
    c.delete(&format!("/-/sim/projects/{app}"), None, None)
        .await
        .expect(200);
    let r = c.verify(r.body["token"].as_str().unwrap(), None).await;
    assert_eq!(r.status, 422, "its project is gone");

    let (code, stderr) = sim.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(
        stderr.contains("GET /api/v4/version -> 200"),
        "-v echoes requests:\n{stderr}"
    );
    assert!(
        unmasked_token(&stderr).is_none(),
        "stderr shows a token:\n{stderr}"
    );
}

#[tokio::test]
async fn runnerform_sim_state_survives_a_restart() {
    let env = TestEnvironment::new();
    let state = env.path().join("gitlab.json");
    let state_arg = state.to_str().unwrap();
    let sim = env.spawn_sim(&["--state", state_arg, "--legacy-registration"]);
    let c = Client::new(&sim.url);
    let app = c
        .get("/api/v4/projects/acme%2Fapp", &sim.admin_token)
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    let (id, token) = c
        .create_runner(
            &sim.admin_token,
            json!({"runner_type": "project_type", "project_id": app, "tag_list": ["keep"]}),
        )
        .await;
    c.verify(&token, Some("s_eeeeeeeeeeee")).await.expect(200);
    let (gone, _) = c
        .create_runner(&sim.admin_token, json!({"runner_type": "instance_type"}))
        .await;
    c.delete(
        &format!("/api/v4/runners/{gone}"),
        Some(&sim.admin_token),
        None,
    )
    .await
    .expect(204);
    let admin = sim.admin_token.clone();
    sim.terminate();

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let sim = env.spawn_sim(&["--state", state_arg]);
    assert_eq!(
        sim.admin_token, admin,
        "the same instance, the same admin token"
    );
    let c = Client::new(&sim.url);
    let d = c.get(&format!("/api/v4/runners/{id}"), &admin).await;
    assert_eq!(d.expect(200)["tag_list"], json!(["keep"]));
    c.verify(&token, None).await.expect(200);
    let m = c
        .get(&format!("/api/v4/runners/{id}/managers"), &admin)
        .await;
    assert_eq!(m.body[0]["system_id"], "s_eeeeeeeeeeee");
    assert_eq!(
        c.get(&format!("/api/v4/runners/{gone}"), &admin)
            .await
            .status,
        404
    );
    let (next, _) = c
        .create_runner(&admin, json!({"runner_type": "instance_type"}))
        .await;
    assert!(next > gone, "ids are never reused");
    // Flags decide the setting on each start.
    let r = c
        .post("/api/v4/runners", None, json!({"token": "GR1348941x"}))
        .await;
    assert_eq!(r.status, 410);
    drop(sim);

    std::fs::write(&state, "{ not a state").unwrap();
    let out = env.run(&["sim", "--state", state_arg]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is not a simulator state file"),
        "{}",
        out.stderr
    );
}

#[test]
fn runnerform_sim_reports_a_busy_address() {
    let env = TestEnvironment::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env.run(&["sim", "--listen", &addr]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!("cannot listen on {addr}")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn runnerform_sim_help_says_what_it_is_for() {
    let env = TestEnvironment::new();
    let out = env.run(&["sim", "--help"]);
    assert_eq!(out.code, 0);
    for needle in [
        "stand-in for GitLab",
        "provisioning scripts",
        "admin_token",
        "throwaway",
        "--state",
        "/-/sim",
    ] {
        assert!(
            out.stdout.contains(needle),
            "--help lacks {needle:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn the_blocking_handle_works_from_a_plain_test() {
    let sim = Simulator::start(SimOptions::default()).unwrap();
    let url = sim.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let c = Client::new(&url);
        c.get("/api/v4/version", &sim.admin_token()).await.status
    });
    assert_eq!(status, 200);
    let err = sim.create_project("nogroup").unwrap_err();
    assert!(err.to_string().contains("needs a group"));
    sim.stop();
    let refused = std::net::TcpStream::connect(url.trim_start_matches("http://"));
    assert!(refused.is_err(), "stopped simulators stop listening");
}

#[test]
fn runnerform_sim_stops_cleanly_right_after_starting() {
    let env = TestEnvironment::new();
    let sim = env.spawn_sim(&["-q"]);
    let (code, stderr) = sim.terminate();
    assert_eq!(
        code, 0,
        "a SIGTERM right after the first line is a clean stop: {stderr}"
    );
    assert!(stderr.is_empty(), "-q keeps stderr quiet: {stderr}");
}
