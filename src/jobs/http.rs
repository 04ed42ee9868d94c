//! `/api/v1/jobs`: the scheduled jobs, their history, and "run now". Reading needs
//! `jobs.read` (hub admins, auditors); running needs `jobs.write` (hub admins).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::time::Duration;

use super::model::{JobRun, JobView};
use super::RunFilter;
use crate::api::{decode_cursor, encode_cursor, page_limit, ApiQuery, Page};
use crate::authz::{Action, Actor, Object};
use crate::error::AppError;
use crate::AppState;

/// How long "run now" waits for the run to finish before answering 202 with the
/// run still working (well inside the request time limit).
const RUN_NOW_WAIT: Duration = Duration::from_secs(10);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_handler))
        .route("/api/v1/jobs/{name}/runs", get(runs_handler))
        .route("/api/v1/jobs/{name}/run", post(run_handler))
}

/// `GET /api/v1/jobs` takes no parameter: an unknown one is a 400, not ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

async fn list_handler(
    State(app): State<AppState>,
    actor: Actor,
    query: Result<ApiQuery<NoQuery>, AppError>,
) -> Result<Json<Page<JobView>>, AppError> {
    actor
        .require(&app, Object::Jobs, Action::Read, None)
        .await?;
    query?;
    let items = super::list_jobs(&app).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunsQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn runs_handler(
    State(app): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
    query: Result<ApiQuery<RunsQuery>, AppError>,
) -> Result<Json<Page<JobRun>>, AppError> {
    actor
        .require(&app, Object::Jobs, Action::Read, None)
        .await?;
    let ApiQuery(q) = query?;
    if app.jobs().find(&name).is_none() {
        return Err(super::JobError::UnknownJob(name).into());
    }
    let filter = RunFilter {
        name,
        before: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: page_limit(q.limit)?,
    };
    let items = super::list_runs(app.store(), &filter).await?;
    let next_cursor = (items.len() as i64 == filter.limit)
        .then(|| {
            items
                .last()
                .map(|r| encode_cursor(r.started_at.as_millis(), &r.id))
        })
        .flatten();
    Ok(Json(Page { items, next_cursor }))
}

/// 200 with the finished run, or 202 with the run still working (follow it in
/// `…/runs`); 409 while a run of the job holds its lease.
async fn run_handler(
    State(app): State<AppState>,
    actor: Actor,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<JobRun>), AppError> {
    actor
        .require(&app, Object::Jobs, Action::Write, None)
        .await?;
    let (run, finished) =
        super::run_now_in_background(&app, &name, &actor.origin, RUN_NOW_WAIT).await?;
    let status = if finished {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(run)))
}
