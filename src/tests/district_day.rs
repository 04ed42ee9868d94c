//! The hub's "today" is the date in the district's time zone (`[district]
//! time_zone`), from its clock: at 23:30 in Chicago it is not yet tomorrow, even
//! though it is in UTC.

use super::*;
use crate::clock::Timestamp;

#[tokio::test]
async fn today_follows_the_configured_time_zone() {
    let chicago =
        TestApp::sqlite_with(&[("HMS_ACH__DISTRICT__TIME_ZONE", "America/Chicago")]).await;
    let utc = TestApp::sqlite().await;
    // 2026-11-02T05:30Z: 23:30 on 1 November in Chicago (CST since that morning).
    let at = Timestamp::parse_rfc3339("2026-11-02T05:30:00Z").unwrap();
    chicago.clock.set(at);
    utc.clock.set(at);
    assert_eq!(chicago.app.today(), jiff::civil::date(2026, 11, 1));
    assert_eq!(utc.app.today(), jiff::civil::date(2026, 11, 2));
    chicago.clock.advance_secs(30 * 60);
    assert_eq!(chicago.app.today(), jiff::civil::date(2026, 11, 2));
}
