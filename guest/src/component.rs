//! The WebAssembly component: the WIT `scoring` interface implemented on top
//! of [`crate::Detector`]. Nothing here may panic across the boundary; every
//! failure is a WIT `error`.

use crate::detector::{Detector, ModelInfo, PackedAnalyses, PackedVerdicts, Term, Verdict};
use crate::error::Error;
use crate::kinds::Report;
use crate::record::{LogRecord, PackedRecord};
use std::cell::RefCell;

wit_bindgen::generate!({
    world: "detector",
    path: "../wit",
});

use exports::logarithm::detector::scoring as wit;

struct Component;

/// The exported resource: a detector behind a `RefCell` because WIT methods
/// take `&self` and `set-threshold` changes it.
struct DetectorResource(RefCell<Detector>);

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::WrongKey { expected, given } => wit::Error::WrongKey(wit::KeyMismatch { expected, given }),
            Error::CorruptModel(m) => wit::Error::CorruptModel(m),
            Error::UnsupportedVersion(v) => wit::Error::UnsupportedVersion(v),
            Error::InvalidArgument(m) => wit::Error::InvalidArgument(m),
        }
    }
}

fn record_from_wit(r: wit::LogRecord) -> LogRecord {
    LogRecord { timestamp_us: r.timestamp_us, source: r.source, host: r.host, priority: r.priority, message: r.message }
}

fn terms_to_wit(terms: Vec<Term>) -> Vec<wit::Term> {
    terms.into_iter().map(|t| wit::Term { text: t.text, weight: t.weight, unseen: t.unseen }).collect()
}

fn packed_verdicts_to_wit(PackedVerdicts { scores, details }: PackedVerdicts) -> wit::PackedVerdicts {
    wit::PackedVerdicts { scores, details: details.into_iter().map(|(i, v)| (i, verdict_to_wit(v))).collect() }
}

fn verdict_to_wit(v: Verdict) -> wit::Verdict {
    wit::Verdict {
        score: v.score,
        anomalous: v.anomalous,
        terms: terms_to_wit(v.terms),
        report: match v.report {
            Report::Quiet => wit::Report::Quiet,
            Report::New => wit::Report::New,
            Report::Worse => wit::Report::Worse,
            Report::Counted => wit::Report::Counted,
        },
        repeat: v.repeat.map(|r| wit::Repeat { template: r.template, count: r.count, first_timestamp_us: r.first_timestamp_us }),
        burst: v.burst.map(|b| wit::Burst { template: b.template, count: b.count, window_secs: b.window_secs, usual: b.usual }),
    }
}

impl wit::Guest for Component {
    type Detector = DetectorResource;
}

impl wit::GuestDetector for DetectorResource {
    fn create(model: Vec<u8>, passphrase: String) -> Result<wit::Detector, wit::Error> {
        let detector = Detector::load(&model, &passphrase)?;
        Ok(wit::Detector::new(DetectorResource(RefCell::new(detector))))
    }

    fn info(&self) -> wit::ModelInfo {
        let ModelInfo { version, format_version, vocabulary_size, training_lines, threshold, trained_at, key_fingerprint, bursts } =
            self.0.borrow().info();
        wit::ModelInfo { version, format_version, vocabulary_size, training_lines, threshold, trained_at, key_fingerprint, bursts }
    }

    fn set_threshold(&self, threshold: f64) -> Result<(), wit::Error> {
        Ok(self.0.borrow_mut().set_threshold(threshold)?)
    }

    fn set_explain(&self, all: bool) {
        self.0.borrow_mut().set_explain(all);
    }

    fn score(&self, record: wit::LogRecord) -> wit::Verdict {
        verdict_to_wit(self.0.borrow().score(&record_from_wit(record)))
    }

    fn score_batch(&self, records: Vec<wit::LogRecord>) -> Vec<wit::Verdict> {
        let detector = self.0.borrow();
        records.into_iter().map(|r| verdict_to_wit(detector.score(&record_from_wit(r)))).collect()
    }

    fn score_packed(&self, packed: wit::PackedRecords) -> Result<wit::PackedVerdicts, wit::Error> {
        let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta)?;
        Ok(packed_verdicts_to_wit(self.0.borrow().score_packed(&packed.text, records)?))
    }

    fn analyse_packed(&self, packed: wit::PackedRecords) -> Result<wit::PackedAnalyses, wit::Error> {
        let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta)?;
        let PackedAnalyses { scores, kinds, terms } = self.0.borrow().analyse_packed(&packed.text, records)?;
        Ok(wit::PackedAnalyses { scores, kinds, terms: terms.into_iter().map(|(i, t)| (i, terms_to_wit(t))).collect() })
    }

    fn conclude_packed(&self, packed: wit::PackedRecords, analyses: wit::PackedAnalyses) -> Result<wit::PackedVerdicts, wit::Error> {
        let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta)?;
        let wit::PackedAnalyses { scores, kinds, terms } = analyses;
        let terms = terms
            .into_iter()
            .map(|(i, t)| (i, t.into_iter().map(|t| Term { text: t.text, weight: t.weight, unseen: t.unseen }).collect()))
            .collect();
        Ok(packed_verdicts_to_wit(self.0.borrow().conclude_packed(&packed.text, records, PackedAnalyses { scores, kinds, terms })?))
    }

    fn save_memory(&self) -> Vec<u8> {
        self.0.borrow().save_memory()
    }

    fn restore_memory(&self, state: Vec<u8>) -> Result<u32, wit::Error> {
        Ok(self.0.borrow().restore_memory(&state)? as u32)
    }
}

export!(Component);
