//! Test fixture (issue 10): the detector component with chosen ways to
//! misbehave, to check that the host contains its guest. Built by
//! `tests/ingestion.rs` for `wasm32-wasip2` and loaded with `logarithm
//! monitor --component`.
//!
//! It scores (and remembers the kinds it reported) like the real
//! component, except a record whose message contains:
//! - `@trap`: panics (a trap);
//! - `@loop`: never returns (the host's time limit must end it);
//! - `@alloc`: allocates until the host's memory cap stops it.
//!
//! Natively it is empty: only the wasm build has something to test.

#[cfg(all(target_arch = "wasm32", target_env = "p2"))]
mod component {
    use logarithm_detector::{Detector, LogRecord, PackedAnalyses, PackedRecord, Report, Term, Verdict};
    use std::cell::RefCell;

    wit_bindgen::generate!({
        world: "detector",
        path: "../../wit",
    });

    use exports::logarithm::detector::scoring as wit;

    struct Component;

    struct Misbehaving(RefCell<Detector>);

    /// Misbehaves as the message asks.
    fn misbehave(message: &str) {
        if message.contains("@trap") {
            panic!("asked to trap");
        }
        if message.contains("@loop") {
            let mut n = 0u64;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        if message.contains("@alloc") {
            // Reserved, not written: memory grows fast, to the cap.
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut more = Vec::<u8>::with_capacity(64 << 20);
                std::hint::black_box(more.as_mut_ptr());
                hoard.push(more);
            }
        }
    }

    fn score(detector: &Detector, r: wit::LogRecord) -> wit::Verdict {
        misbehave(&r.message);
        let record = LogRecord { timestamp_us: r.timestamp_us, source: r.source, host: r.host, priority: r.priority, message: r.message };
        to_wit(detector.score(&record))
    }

    fn term_to_wit(t: Term) -> wit::Term {
        wit::Term { text: t.text, weight: t.weight, unseen: t.unseen }
    }

    fn to_wit(v: Verdict) -> wit::Verdict {
        wit::Verdict {
            score: v.score,
            anomalous: v.anomalous,
            terms: v.terms.into_iter().map(term_to_wit).collect(),
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
        type Detector = Misbehaving;
    }

    impl wit::GuestDetector for Misbehaving {
        fn create(model: Vec<u8>, passphrase: String) -> Result<wit::Detector, wit::Error> {
            let detector = Detector::load(&model, &passphrase).map_err(|e| wit::Error::CorruptModel(e.to_string()))?;
            Ok(wit::Detector::new(Misbehaving(RefCell::new(detector))))
        }

        fn info(&self) -> wit::ModelInfo {
            let i = self.0.borrow().info();
            wit::ModelInfo {
                version: i.version,
                format_version: i.format_version,
                vocabulary_size: i.vocabulary_size,
                training_lines: i.training_lines,
                threshold: i.threshold,
                trained_at: i.trained_at,
                key_fingerprint: i.key_fingerprint,
                bursts: i.bursts,
            }
        }

        fn set_threshold(&self, threshold: f64) -> Result<(), wit::Error> {
            self.0.borrow_mut().set_threshold(threshold).map_err(|e| wit::Error::InvalidArgument(e.to_string()))
        }

        fn set_explain(&self, all: bool) {
            self.0.borrow_mut().set_explain(all);
        }

        fn save_memory(&self) -> Vec<u8> {
            self.0.borrow().save_memory()
        }

        fn restore_memory(&self, state: Vec<u8>) -> Result<u32, wit::Error> {
            self.0.borrow().restore_memory(&state).map(|kept| kept as u32).map_err(|e| wit::Error::InvalidArgument(e.to_string()))
        }

        fn score(&self, record: wit::LogRecord) -> wit::Verdict {
            score(&self.0.borrow(), record)
        }

        fn score_batch(&self, records: Vec<wit::LogRecord>) -> Vec<wit::Verdict> {
            let detector = self.0.borrow();
            records.into_iter().map(|r| score(&detector, r)).collect()
        }

        fn score_packed(&self, packed: wit::PackedRecords) -> Result<wit::PackedVerdicts, wit::Error> {
            // Misbehaves for the whole batch: the host splits it until the
            // record that asks is alone.
            misbehave(&packed.text);
            let invalid = |e: logarithm_detector::Error| wit::Error::InvalidArgument(e.to_string());
            let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta).map_err(invalid)?;
            let scored = self.0.borrow().score_packed(&packed.text, records).map_err(invalid)?;
            Ok(wit::PackedVerdicts { scores: scored.scores, details: scored.details.into_iter().map(|(i, v)| (i, to_wit(v))).collect() })
        }

        fn analyse_packed(&self, packed: wit::PackedRecords) -> Result<wit::PackedAnalyses, wit::Error> {
            // Like `score-packed`: a host that analyses a batch in parts
            // finds the part that fails, then splits it.
            misbehave(&packed.text);
            let invalid = |e: logarithm_detector::Error| wit::Error::InvalidArgument(e.to_string());
            let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta).map_err(invalid)?;
            let PackedAnalyses { scores, kinds, terms } = self.0.borrow().analyse_packed(&packed.text, records).map_err(invalid)?;
            let terms = terms.into_iter().map(|(i, t)| (i, t.into_iter().map(term_to_wit).collect())).collect();
            Ok(wit::PackedAnalyses { scores, kinds, terms })
        }

        fn conclude_packed(&self, packed: wit::PackedRecords, analyses: wit::PackedAnalyses) -> Result<wit::PackedVerdicts, wit::Error> {
            misbehave(&packed.text);
            let invalid = |e: logarithm_detector::Error| wit::Error::InvalidArgument(e.to_string());
            let records = PackedRecord::from_lists(&packed.lengths, &packed.timestamps, &packed.meta).map_err(invalid)?;
            let wit::PackedAnalyses { scores, kinds, terms } = analyses;
            let terms = terms
                .into_iter()
                .map(|(i, t)| (i, t.into_iter().map(|t| Term { text: t.text, weight: t.weight, unseen: t.unseen }).collect()))
                .collect();
            let scored =
                self.0.borrow().conclude_packed(&packed.text, records, PackedAnalyses { scores, kinds, terms }).map_err(invalid)?;
            Ok(wit::PackedVerdicts { scores: scored.scores, details: scored.details.into_iter().map(|(i, v)| (i, to_wit(v))).collect() })
        }
    }

    export!(Component);
}
