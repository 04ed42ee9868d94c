//! `hms-ach jobs list|run`: the scheduled jobs from the command line.

use crate::audit::Origin;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::jobs::JobRun;

fn shown(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".to_string(), |t| t.to_rfc3339())
}

/// The jobs, their schedules, next and last runs: a table, or JSON as the API's.
pub async fn jobs_list(config: Config, json: bool) -> anyhow::Result<()> {
    let app = super::open_app(config).await?;
    let views = crate::jobs::list_jobs(&app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    println!(
        "{:<24} {:<18} {:<18} {:<26} LAST RUN",
        "JOB", "SCHEDULE", "TIME ZONE", "NEXT RUN"
    );
    for v in &views {
        let last = v.last_run.as_ref().map_or_else(
            || "never".to_string(),
            |r| format!("{} {} ({})", r.outcome, shown(Some(r.slot)), r.kind),
        );
        println!(
            "{:<24} {:<18} {:<18} {:<26} {last}",
            v.name,
            v.schedule,
            v.time_zone,
            shown(v.next_run)
        );
    }
    if !app.jobs().enabled() {
        println!("\n(scheduled runs are off: [jobs] enabled = false)");
    }
    Ok(())
}

fn print_run(run: &JobRun, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(run)?);
        return Ok(());
    }
    let took = run
        .ended_at
        .map(|e| e.saturating_sub(run.started_at).as_secs_f64())
        .unwrap_or(0.0);
    println!(
        "{} {}: {} item(s) in {took:.3} s",
        run.job,
        run.outcome,
        run.items.unwrap_or(0)
    );
    if let Some(d) = &run.detail {
        println!("  {d}");
    }
    if let Some(e) = &run.error {
        println!("  error: {e}");
    }
    Ok(())
}

/// Runs one job now in this process (a manual run, audited). `Ok(false)` when the
/// job failed, for a non-zero exit status.
pub async fn jobs_run(config: Config, name: &str, json: bool) -> anyhow::Result<bool> {
    let app = super::open_app(config).await?;
    let run = crate::jobs::run_now(&app, name, &Origin::cli()).await?;
    print_run(&run, json)?;
    Ok(run.succeeded())
}
