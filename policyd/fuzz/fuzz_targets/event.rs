//! Whatever an agent sends to rampartd's ReportEvents (a protobuf ReportRequest), decoding it and
//! turning each event into an alert must give an alert or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use rampart_protos::agent::ReportRequest;
use rampartd::api::ReportedEvent;
use rampartd::pipeline::enrich;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ReportRequest::decode(data) else {
        return;
    };
    for event in req.events {
        let reported = ReportedEvent {
            event,
            workload: None,
        };
        if let Ok(alert) = enrich::alert(&reported, "fuzz-node") {
            let _ = alert.to_json();
            let _ = alert.journal_fields();
        }
    }
});
