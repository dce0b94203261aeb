//! The feed index: equivalence with batch mode, durability under SIGKILL, the time window,
//! and the `index` and `watch` commands end to end. (The golden on-disk format test is a
//! unit test in `src/feed/mod.rs`.)

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use neardup::PipelineBuilder;
use neardup::feed::{
    Access, Article, FeedIndex, IgnoredDateReason, IndexSettings, Level, VerdictKind,
};
use neardup::input::{FieldNames, InputSpec};
use neardup::progress::Silent;
use neardup::shingle::ShingleSpec;

use crate::util::*;

/// A small reproducible generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `n` articles: originals of 40–160 random words, and (about a third) copies of an
/// earlier article with 0–30 % of their words replaced, so that similarities spread over
/// the whole range around any threshold. Dates are one hour apart from `start`.
fn corpus(seed: u64, n: usize, start: i64) -> Vec<serde_json::Value> {
    generated_corpus(seed, n, start, 3, |rng, source| {
        let rate = rng.below(300);
        with_words_replaced(rng, source, rate)
    })
}

const VOCABULARY: u64 = 3000;

/// `n` articles of words `w0…w2999`, dates one hour apart from `start`: one in
/// `derived_one_in` is `derive`d from a random earlier one, the others are originals of
/// 40–160 random words.
fn generated_corpus(
    seed: u64,
    n: usize,
    start: i64,
    derived_one_in: u64,
    derive: impl Fn(&mut Rng, &[u64]) -> Vec<u64>,
) -> Vec<serde_json::Value> {
    let mut rng = Rng(seed);
    let mut texts: Vec<Vec<u64>> = Vec::new();
    let mut out = Vec::new();
    for i in 0..n {
        let words: Vec<u64> = if i > 0 && rng.below(derived_one_in) == 0 {
            let source = &texts[rng.below(texts.len() as u64) as usize];
            derive(&mut rng, source)
        } else {
            let len = 40 + rng.below(120);
            (0..len).map(|_| rng.below(VOCABULARY)).collect()
        };
        let text: Vec<String> = words.iter().map(|w| format!("w{w}")).collect();
        out.push(serde_json::json!({
            "id": format!("doc-{i:05}"),
            "date": start + 3600 * i as i64,
            "text": text.join(" "),
        }));
        texts.push(words);
    }
    out
}

/// `source` with each word replaced by a random one with probability `rate` per mille.
fn with_words_replaced(rng: &mut Rng, source: &[u64], rate: u64) -> Vec<u64> {
    source
        .iter()
        .map(|&w| {
            if rng.below(1000) < rate {
                rng.below(VOCABULARY)
            } else {
                w
            }
        })
        .collect()
}

fn to_jsonl(records: &[serde_json::Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a < b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Every pair `neardup pairs` reports, with its exact Jaccard.
fn batch_pairs(path: &Path, builder: PipelineBuilder) -> BTreeMap<(String, String), f32> {
    let outcome = builder
        .build()
        .unwrap()
        .run(&[InputSpec::Path(path.to_path_buf())], &Silent)
        .unwrap();
    outcome
        .pairs
        .iter()
        .map(|p| {
            let key = ordered(outcome.corpus.id(p.a), outcome.corpus.id(p.b));
            (key, p.jaccard)
        })
        .collect()
}

/// Every pair found by adding the JSON lines of `path` one by one, reopening the index
/// half way (so that both the bulk-built and the incrementally grown tables are used).
fn feed_pairs(
    path: &Path,
    dir: &Path,
    settings: &IndexSettings,
) -> BTreeMap<(String, String), f32> {
    FeedIndex::create(dir, settings).unwrap();
    let lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut pairs = BTreeMap::new();
    let fields = FieldNames::default();
    for half in [&lines[..lines.len() / 2], &lines[lines.len() / 2..]] {
        let mut index = FeedIndex::open(dir, Access::Write, &Silent).unwrap();
        let mut fingerprinter = index.fingerprinter();
        for (i, line) in half.iter().enumerate() {
            let Ok(article) = Article::from_json(line, &fields, &mut fingerprinter, 0) else {
                continue; // empty texts are skipped by both
            };
            let verdict = index.add(&article).unwrap().expect("ids are unique");
            for m in &verdict.matches {
                pairs.insert(ordered(&article.id, &m.id), m.score);
            }
            if i % 101 == 0 {
                index.commit().unwrap();
            }
        }
        index.commit().unwrap();
    }
    pairs
}

fn settings_of(builder: PipelineBuilder, window: Option<u64>) -> IndexSettings {
    IndexSettings::new(builder.build().unwrap().settings(), Level::Copy, window).unwrap()
}

#[test]
fn adding_article_by_article_finds_the_batch_pairs() {
    let cases = [
        (1, PipelineBuilder::new().threshold(0.5)),
        (2, PipelineBuilder::new().threshold(0.3)),
        (3, PipelineBuilder::new().threshold(0.8).num_perm(64)),
        (
            4,
            PipelineBuilder::new()
                .threshold(0.5)
                .shingle(ShingleSpec::Chars(7)),
        ),
        (
            5,
            PipelineBuilder::new().threshold(0.6).lsh(Some(8), Some(2)),
        ),
    ];
    for (seed, builder) in cases {
        let s = Scratch::new();
        let path = s.write("in.jsonl", to_jsonl(&corpus(seed, 600, 0)));
        let batch = batch_pairs(&path, builder.clone());
        let feed = feed_pairs(&path, &s.path("idx"), &settings_of(builder, None));
        assert!(
            batch.len() > 10,
            "seed {seed}: the corpus has pairs ({})",
            batch.len()
        );
        assert_eq!(feed, batch, "seed {seed}");
    }
}

#[test]
fn reuters_added_article_by_article_gives_the_batch_pairs() {
    let Some(data) = data_dir() else { return };
    let path = data.join("reuters21578.jsonl");
    let s = Scratch::new();
    let builder = PipelineBuilder::new().threshold(0.5);
    let batch = batch_pairs(&path, builder.clone());
    let feed = feed_pairs(&path, &s.path("idx"), &settings_of(builder, None));
    assert!(batch.len() > 500);
    let missing: Vec<_> = batch
        .keys()
        .filter(|k| !feed.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = feed
        .keys()
        .filter(|k| !batch.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(feed, batch, "the same pairs with the same scores");
}

fn article(index: &FeedIndex, id: &str, text: &str, date: Option<i64>) -> Article {
    let mut record = serde_json::json!({"id": id, "text": text});
    if let Some(d) = date {
        record["date"] = d.into();
    }
    Article::from_json(
        &record.to_string(),
        &FieldNames::default(),
        &mut index.fingerprinter(),
        1_000,
    )
    .unwrap()
}

/// An article whose `date` field holds `date` (null, or text that is not a date: undated),
/// arriving at `now`.
/// A copy-level index with a window of `window` seconds, created in `dir` and opened for
/// writing.
fn windowed_index(dir: &Path, window: i64) -> FeedIndex {
    FeedIndex::create(
        dir,
        &settings_of(PipelineBuilder::new(), Some(window as u64)),
    )
    .unwrap();
    FeedIndex::open(dir, Access::Write, &Silent).unwrap()
}

fn arriving(index: &FeedIndex, id: &str, text: &str, date: serde_json::Value, now: i64) -> Article {
    let record = serde_json::json!({"id": id, "text": text, "date": date});
    Article::from_json(
        &record.to_string(),
        &FieldNames::default(),
        &mut index.fingerprinter(),
        now,
    )
    .unwrap()
}

#[test]
fn verdicts_and_cluster_ids_are_stable() {
    let s = Scratch::new();
    let dir = s.path("idx");
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), None)).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let rate = article(&index, "rate-1", RATE, None);
    let v = index.add(&rate).unwrap().unwrap();
    assert_eq!(
        (v.kind, v.cluster.as_str(), v.matches.len()),
        (VerdictKind::New, "rate-1", 0)
    );
    let copy = article(&index, "rate-2", RATE_COPY, None);
    let v = index.add(&copy).unwrap().unwrap();
    assert_eq!(v.kind, VerdictKind::Duplicate);
    assert_eq!(
        (v.best().unwrap().id.as_str(), v.cluster.as_str()),
        ("rate-1", "rate-1")
    );
    // A copy of the copy joins the same cluster, whichever member it matches best.
    let third = article(
        &index,
        "rate-3",
        &RATE_COPY.replace("markets", "shares"),
        None,
    );
    let v = index.add(&third).unwrap().unwrap();
    assert_eq!(
        (v.best().unwrap().id.as_str(), v.cluster.as_str()),
        ("rate-2", "rate-1")
    );
    assert_eq!(v.matches.len(), 2);
    assert!(v.matches[0].score >= v.matches[1].score);
    let storm = article(&index, "storm-1", STORM, None);
    assert_eq!(index.add(&storm).unwrap().unwrap().kind, VerdictKind::New);
    // The same id with other text is refused, not added twice.
    assert!(
        index
            .add(&article(&index, "rate-1", STORM_COPY, None))
            .unwrap()
            .is_none()
    );
    // The same id with the same text (a re-send) gets its verdict again, added once.
    let resent = index.add(&third).unwrap().unwrap();
    assert!(resent.already_indexed);
    assert_eq!(
        (
            resent.kind,
            resent.best().unwrap().id.as_str(),
            resent.cluster.as_str()
        ),
        (VerdictKind::Duplicate, "rate-2", "rate-1")
    );
    index.commit().unwrap();
    drop(index);

    let mut reader = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    assert_eq!(reader.len(), 4);
    let again = reader.query(&third).unwrap().unwrap();
    assert!(again.already_indexed);
    assert_eq!(
        (again.kind, again.cluster.as_str()),
        (VerdictKind::Duplicate, "rate-1")
    );
    assert_eq!(again.best().unwrap().id, "rate-2");
    let probe = reader
        .query(&article(&reader, "storm-2", STORM_COPY, None))
        .unwrap()
        .unwrap();
    // An indexed id with other text is refused by a query as by an add.
    assert!(
        reader
            .query(&article(&reader, "storm-1", RATE, None))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        (probe.cluster.as_str(), probe.already_indexed),
        ("storm-1", false)
    );
    assert!(reader.add(&storm).is_err(), "a reader cannot add");
    let stats = reader.stats();
    assert_eq!(
        (stats.new, stats.duplicates, stats.clusters_with_duplicates),
        (2, 2, 1)
    );
}

#[test]
fn an_undated_article_takes_the_feed_clock_and_does_not_expire_the_archive() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let day: i64 = 86_400;
    let t0 = 500_000_000; // 1985: an archive replayed long after
    let mut index = windowed_index(&dir, 7 * day);
    let now = neardup::feed::now();
    let at_arrival = |index: &FeedIndex, id: &str, text: &str, date: serde_json::Value| {
        arriving(index, id, text, date, now)
    };
    // Before any dated article, an undated one has its arrival time.
    let first = at_arrival(&index, "undated-0", STORM, serde_json::Value::Null);
    assert_eq!(index.time_of(&first), now);
    index.add(&first).unwrap();
    index.add(&article(&index, "rate", RATE, Some(t0))).unwrap();
    index
        .add(&article(
            &index,
            "later",
            "another story entirely",
            Some(t0 + 2 * day),
        ))
        .unwrap();
    // An unparsable date: stamped with the newest date, so it matches its copy of that
    // time and moves no clock.
    let bad = at_arrival(
        &index,
        "bad-date",
        RATE_COPY,
        "31-MAR-1987 605:12:19.12".into(),
    );
    let ignored = bad.ignored_date.clone().unwrap();
    assert_eq!(ignored.reason, IgnoredDateReason::Unparsable);
    assert_eq!(index.time_of(&bad), t0 + 2 * day);
    let v = index.add(&bad).unwrap().unwrap();
    assert_eq!(v.best().map(|m| m.id.as_str()), Some("rate"));
    assert_eq!(v.ignored_date, Some(Box::new(ignored)));
    // A date years after its arrival (a typo) is a mistake, not a date: it used to move
    // the clock to now, and the next compaction expired the whole replayed archive.
    for (id, typo) in [
        ("typo-year", serde_json::json!("2087-03-01T00:00:00Z")),
        ("typo-number", serde_json::json!(1e30)),
    ] {
        let typo = at_arrival(&index, id, "a story with a typo in its year", typo);
        assert_eq!(
            typo.ignored_date.as_ref().map(|d| d.reason),
            Some(IgnoredDateReason::InTheFuture)
        );
        assert_eq!(index.time_of(&typo), t0 + 2 * day);
        index.add(&typo).unwrap();
    }
    // Within a day of now, a date is taken (a zone written wrongly).
    let soon = at_arrival(&index, "soon", "tomorrow's story", (now + 3600).into());
    assert_eq!((soon.ignored_date, soon.dated), (None, true));
    index.commit().unwrap();
    let stats = index.stats();
    assert_eq!((stats.clock, stats.expired), (t0 + 2 * day, 0));
    drop(index);
    FeedIndex::open(&dir, Access::Write, &Silent)
        .unwrap()
        .compact(&Silent)
        .unwrap();
    let reopened = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    assert_eq!((reopened.len(), reopened.stats().clock), (6, t0 + 2 * day));
}

/// Undated articles at the head of a replayed archive were stored at their arrival (today)
/// and so were never expired; the first dated article now moves them to its date, in the
/// open index and in every later load of its log.
#[test]
fn undated_articles_before_the_first_dated_one_expire_with_it() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let day: i64 = 86_400;
    let t0 = 500_000_000;
    let mut index = windowed_index(&dir, 7 * day);
    let now = neardup::feed::now();
    for (id, text) in [
        ("undated-0", STORM),
        ("undated-1", "a short note without a date"),
    ] {
        let undated = arriving(&index, id, text, serde_json::Value::Null, now);
        index.add(&undated).unwrap();
    }
    assert_eq!(index.stats().time_range, Some((now, now)));
    index
        .add(&article(&index, "first-dated", RATE, Some(t0)))
        .unwrap();
    assert_eq!(index.stats().time_range, Some((t0, t0)));
    index.commit().unwrap();
    drop(index);
    // A load of the log stamps them alike.
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    assert_eq!(index.stats().time_range, Some((t0, t0)));
    index
        .add(&article(
            &index,
            "weeks-later",
            "another story entirely",
            Some(t0 + 20 * day),
        ))
        .unwrap();
    assert_eq!(index.stats().expired, 3);
    let report = index.compact(&Silent).unwrap();
    assert_eq!((report.removed, report.kept), (3, 1));
    assert!(index.contains("weeks-later").unwrap());
    assert!(!index.contains("undated-0").unwrap());
}

/// An undated article (no date, or one that does not parse) matches at any distance, as
/// the batch story level pairs it, both ways: before, it was matched at the feed's clock,
/// so an undated copy of an article dated days earlier was `new`.
#[test]
fn an_undated_article_matches_at_any_distance_within_a_window() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let day: i64 = 86_400;
    let t0 = 1_700_000_000;
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), Some(3 * 86_400))).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let now = neardup::feed::now();
    let undated = |index: &FeedIndex, id: &str, text: &str, date: serde_json::Value| {
        arriving(index, id, text, date, now)
    };
    index.add(&article(&index, "rate", RATE, Some(t0))).unwrap();
    index
        .add(&article(&index, "storm", STORM, Some(t0 + 10 * day)))
        .unwrap();
    // An undated copy of an article dated ten days before the clock: stored at the clock,
    // matched at any distance.
    let copy = undated(&index, "rate-undated", RATE_COPY, serde_json::Value::Null);
    assert_eq!(index.time_of(&copy), t0 + 10 * day);
    let v = index.add(&copy).unwrap().unwrap();
    assert_eq!(
        (v.kind, v.best().map(|m| m.id.as_str())),
        (VerdictKind::Duplicate, Some("rate"))
    );
    let bad = undated(&index, "rate-bad-date", RATE_COPY, "not a date".into());
    assert!(bad.ignored_date.is_some());
    let v = index.query(&bad).unwrap().unwrap();
    assert_eq!(v.kind, VerdictKind::Duplicate);
    assert_eq!(v.matches.len(), 2, "the dated one and the undated one");
    // A dated article matches a stored undated one at any distance too, after a
    // reopening as well, but not the dated one beyond the window.
    let storm_copy = undated(&index, "storm-undated", STORM_COPY, serde_json::Value::Null);
    index.add(&storm_copy).unwrap();
    index.commit().unwrap();
    drop(index);
    let mut index = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    let late = article(&index, "rate-late", RATE_COPY, Some(t0 + 100 * day));
    let v = index.query(&late).unwrap().unwrap();
    let ids: Vec<&str> = v.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["rate-undated"]);
    let early = article(&index, "storm-early", STORM_COPY, Some(t0 - 100 * day));
    let v = index.query(&early).unwrap().unwrap();
    let ids: Vec<&str> = v.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["storm-undated"]);
}

#[test]
fn reuters_with_one_unparsable_date_keeps_its_window() {
    let Some(data) = data_dir() else { return };
    let s = Scratch::new();
    let dir = s.path("idx");
    index_ok(&["create", "-q", "--window", "7d"], &dir, &[]);
    index_ok(&["add", "-q"], &dir, &[&data.join("reuters21578.jsonl")]);
    let stats = &lines_of(&index_output(&["stats"], &dir, &[]))[0];
    // reuters-17192's date does not parse; the clock stays at Reuters' last date (1987).
    let newest_date = 561_768_798; // 20-OCT-1987
    assert_eq!(stats["clock"], newest_date, "{stats}");
    assert_eq!(stats["newest"], newest_date, "{stats}");
    let expired = stats["expired"].as_u64().unwrap();
    assert!(expired < 19_000, "{stats}");
    index_ok(&["compact", "-q"], &dir, &[]);
    let stats = &lines_of(&index_output(&["stats"], &dir, &[]))[0];
    assert_eq!(stats["articles"], 19_043 - expired, "{stats}");
}

#[test]
fn the_window_stops_old_articles_matching_and_compact_removes_them() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let day: i64 = 86_400;
    let t0 = 1_700_000_000;
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), Some(7 * 86_400))).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    index
        .add(&article(&index, "rate-old", RATE, Some(t0)))
        .unwrap();
    index
        .add(&article(&index, "storm", STORM, Some(t0 + 5 * day)))
        .unwrap();
    // Six days later: within the window. Ten days later: too old to match.
    let within = index
        .query(&article(&index, "q1", RATE_COPY, Some(t0 + 6 * day)))
        .unwrap()
        .unwrap();
    assert_eq!(within.best().map(|m| m.id.as_str()), Some("rate-old"));
    let late = article(&index, "rate-late", RATE_COPY, Some(t0 + 10 * day));
    assert_eq!(index.add(&late).unwrap().unwrap().kind, VerdictKind::New);
    index.commit().unwrap();
    let stats = index.stats();
    assert_eq!(
        (stats.articles, stats.expired),
        (3, 1),
        "clock is the newest date"
    );
    let report = index.compact(&Silent).unwrap();
    assert_eq!((report.removed, report.kept), (1, 2));
    assert!(report.log_bytes.1 < report.log_bytes.0);
    assert!(!index.contains("rate-old").unwrap() && index.contains("storm").unwrap());
    // The index goes on after compaction, and reopens with the new generation only.
    let copy = article(&index, "storm-copy", STORM_COPY, Some(t0 + 10 * day));
    assert_eq!(index.add(&copy).unwrap().unwrap().cluster, "storm");
    index.commit().unwrap();
    drop(index);
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("articles."))
        .collect();
    assert_eq!(files, ["articles.1.log"]);
    let reopened = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    assert_eq!((reopened.len(), reopened.stats().generation), (3, 1));
}

#[test]
fn damage_is_refused_with_a_clear_error() {
    let s = Scratch::new();
    let dir = s.path("idx");
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), None)).unwrap();
    let meta = std::fs::read(dir.join("index.meta")).unwrap();
    let mut bad = meta.clone();
    bad[30] ^= 1;
    std::fs::write(dir.join("index.meta"), &bad).unwrap();
    let e = FeedIndex::open(&dir, Access::Read, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("index.meta is damaged"), "{e}");
    let mut newer = meta.clone();
    newer[8] = 2;
    std::fs::write(dir.join("index.meta"), &newer).unwrap();
    let e = FeedIndex::open(&dir, Access::Read, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("format version 2"), "{e}");
    let e = FeedIndex::open(&s.path("nothing"), Access::Read, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a neardup index"), "{e}");
    let e = FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), None)).unwrap_err();
    assert!(
        e.to_string().contains("already holds a neardup index"),
        "{e}"
    );
}

#[test]
fn a_damaged_frame_with_articles_after_it_is_refused_not_cut_off() {
    let s = Scratch::new();
    let dir = s.path("idx");
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), None)).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    for i in 0..20 {
        let a = article(
            &index,
            &format!("a{i}"),
            &format!("article {i} of twenty words w{i}"),
            None,
        );
        index.add(&a).unwrap();
    }
    index.commit().unwrap();
    drop(index);
    let log = dir.join("articles.0.log");
    let good = std::fs::read(&log).unwrap();
    // One byte inside the first article: the nineteen after it are intact.
    let mut bad = good.clone();
    bad[40] ^= 0xFF;
    std::fs::write(&log, &bad).unwrap();
    for access in [Access::Read, Access::Write] {
        let e = FeedIndex::open(&dir, access, &Silent)
            .unwrap_err()
            .to_string();
        assert!(e.contains("articles.0.log is damaged at byte 24"), "{e}");
        assert!(e.contains("intact articles follow"), "{e}");
        assert!(e.contains("nothing was changed"), "{e}");
        assert!(e.contains("'neardup index repair "), "{e}");
    }
    let out = index_output(&["stats"], &dir, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("damaged at byte 24"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read(&log).unwrap(), bad, "nothing is cut off");
    // A damaged last frame is an unfinished write: ignored, and cut by a writer.
    let mut torn = good.clone();
    let last = torn.len() - 5;
    torn[last] ^= 0xFF;
    std::fs::write(&log, &torn).unwrap();
    assert_eq!(
        FeedIndex::open(&dir, Access::Read, &Silent).unwrap().len(),
        19
    );
    let index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    assert_eq!(index.len(), 19);
    drop(index);
    assert!(std::fs::metadata(&log).unwrap().len() < good.len() as u64);
    // A log cut inside its header says so, naming the file.
    std::fs::write(&log, &good[..10]).unwrap();
    let e = FeedIndex::open(&dir, Access::Read, &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("articles.0.log: the article log is cut short"),
        "{e}"
    );
}

#[test]
fn reuters_with_one_damaged_byte_is_refused_not_cut_off() {
    let Some(data) = data_dir() else { return };
    let reuters = data.join("reuters21578.jsonl");
    let s = Scratch::new();
    let dir = s.path("idx");
    index_ok(&["create", "-q"], &dir, &[]);
    index_ok(&["add", "-q"], &dir, &[&reuters]);
    let log = dir.join("articles.0.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[200] = 0xFF;
    std::fs::write(&log, &bytes).unwrap();
    for (args, inputs) in [
        (&["stats"][..], &[][..]),
        (&["add", "-q"], &[reuters.as_path()]),
    ] {
        let out = index_output(args, &dir, inputs);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr_of(&out);
        assert!(err.contains("is damaged at byte"), "{err}");
    }
    assert_eq!(std::fs::metadata(&log).unwrap().len(), bytes.len() as u64);
    // Repaired: every article but the first, whose frame held the byte.
    let out = index_output(&["repair", "--format", "json"], &dir, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = lines_of(&out).remove(0);
    assert_eq!(report["kept"], 19_042);
    assert_eq!(report["damaged"][0]["offset"], 24);
    assert_eq!(index_stats(&dir)["articles"], 19_042);
    assert_eq!(
        std::fs::read(dir.join("articles.0.log.damaged")).unwrap(),
        bytes
    );
}

#[test]
fn index_errors_name_the_path_and_say_the_cause_once() {
    let s = Scratch::new();
    let file = s.path("a-file");
    std::fs::write(&file, "not an index").unwrap();
    let out = index_output(&["create", "-q"], &file, &[]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("a-file: exists and is not a directory"),
        "{err}"
    );
    // An I/O error's cause is printed once, not once per level of the chain.
    let out = index_output(&["create", "-q"], &file.join("idx"), &[]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("creating its parent directory"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// `neardup ARGS...` with files limited to `blocks` of 512 bytes (`ulimit -f`) and
/// SIGXFSZ ignored: a write past the limit fails as a write to a full disk does, with
/// an error (EFBIG) instead of a signal. Standard input is `stdin`.
fn with_file_size_limit(
    blocks: u64,
    args: &[&std::ffi::OsStr],
    stdin: &[u8],
) -> std::process::Output {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(assert_cmd::cargo::cargo_bin("neardup"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&stdin); // watch may stop reading once a write fails
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// Verdict lines by id, without the `indexed` mark.
fn verdicts_by_id(lines: &[serde_json::Value]) -> HashMap<String, serde_json::Value> {
    lines
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("indexed");
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// A write to the index that fails (here past a file size limit, as on a full disk) is
/// reported with its own cause, not as "an earlier write failed", and with what is kept;
/// running again afterwards stores the rest, and every answered article is there. An
/// article of the failed group that was stored without being answered gets, sent again,
/// the verdict it was stored with (marked `indexed`): the answer it would have had.
#[test]
fn a_failed_write_names_its_cause_and_running_again_keeps_what_was_answered() {
    let s = Scratch::new();
    let records = corpus(61, 600, 1_700_000_000);
    let input = s.write("in.jsonl", to_jsonl(&records));
    let os = |p: &Path| p.as_os_str().to_owned();
    let whole = s.path("whole.idx");
    index_ok(&["create", "-q"], &whole, &[]);
    let uninterrupted = verdicts_by_id(&lines_of(&index_output(&["add", "-q"], &whole, &[&input])));
    assert_eq!(uninterrupted.len(), records.len());
    for how in ["add", "watch"] {
        let idx = s.path(&format!("{how}.idx"));
        index_ok(&["create", "-q"], &idx, &[]);
        let out = if how == "add" {
            let args = [
                os(Path::new("index")),
                "add".into(),
                "--commit-every".into(),
                "10".into(),
                os(&idx),
                os(&input),
            ];
            with_file_size_limit(
                200,
                &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
                b"",
            )
        } else {
            let args = [
                os(Path::new("watch")),
                "-q".into(),
                "--max-group".into(),
                "10".into(),
                os(&idx),
            ];
            let body = std::fs::read(&input).unwrap();
            with_file_size_limit(
                200,
                &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
                &body,
            )
        };
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{how}: {err}");
        assert!(err.contains("File too large (os error 27)"), "{how}: {err}");
        assert!(!err.contains("earlier write"), "{how}: {err}");
        assert!(
            err.contains("every article answered before this is stored"),
            "{how}: {err}"
        );
        let answered = lines_of(&out);
        assert!(
            !answered.is_empty() && answered.len() < records.len(),
            "{how}: {err}"
        );
        // With the limit gone, the same input again: the rest is stored, and every article
        // answered before is answered as already there.
        let stored = index_stats(&idx)["articles"].as_u64().unwrap();
        let again = index_output(&["add", "-q"], &idx, &[&input]);
        assert!(again.status.success(), "{how}: {}", stderr_of(&again));
        let again = lines_of(&again);
        let resent: Vec<&str> = again
            .iter()
            .filter(|v| v["indexed"] == true)
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(resent.len() as u64, stored, "{how}");
        for v in &answered {
            assert!(resent.contains(&v["id"].as_str().unwrap()), "{how}: {v}");
        }
        // Every verdict, stored ones included, is what one uninterrupted run gives.
        assert_eq!(verdicts_by_id(&again), uninterrupted, "{how}");
        if how == "add" {
            // Groups of 10 against a fixed limit: the failed one was partly stored.
            assert!(stored > answered.len() as u64, "{how}: {stored}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The command line.

/// `neardup index ARGS... IDX INPUTS...`, its output whatever the exit status.
fn index_output(args: &[&str], idx: &Path, inputs: &[&Path]) -> std::process::Output {
    neardup()
        .arg("index")
        .args(args)
        .arg(idx)
        .args(inputs)
        .output()
        .unwrap()
}

/// `neardup index ARGS... IDX INPUTS...`, which must succeed.
fn index_ok(args: &[&str], idx: &Path, inputs: &[&Path]) {
    let out = index_output(args, idx, inputs);
    assert!(out.status.success(), "index {args:?}: {}", stderr_of(&out));
}

fn lines_of(out: &std::process::Output) -> Vec<serde_json::Value> {
    json_lines(&stdout_of(out))
}

#[test]
fn index_commands_end_to_end() {
    let s = Scratch::new();
    let idx = s.path("news.idx");
    let created = neardup()
        .args(["index", "create"])
        .arg(&idx)
        .args(["--window", "30d"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr_of(&created));
    assert!(stderr_of(&created).contains("34 bands x 3 rows"));
    let first = s.jsonl("first.jsonl", &[("rate-1", RATE), ("storm-1", STORM)]);
    let out = index_output(&["add"], &idx, &[&first]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    // The exact bytes of verdict lines are part of the contract.
    insta::assert_snapshot!(stdout_of(&out), @r#"
    {"schema_version":1,"id":"rate-1","verdict":"new","match":null,"score":null,"cluster":"rate-1"}
    {"schema_version":1,"id":"storm-1","verdict":"new","match":null,"score":null,"cluster":"storm-1"}
    "#);
    let second = s.jsonl(
        "second.jsonl",
        &[
            ("rate-2", RATE_COPY),
            ("storm-1", STORM_COPY),
            ("storm-2", STORM_COPY),
            ("rate-1", RATE),
        ],
    );
    let out = index_output(&["add", "--all-matches"], &idx, &[&second]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a repeated id with other text is bad input"
    );
    assert!(
        stderr_of(&out).contains("second.jsonl:2: duplicate id \"storm-1\" (first seen at index ",)
            && stderr_of(&out).contains(
                "added earlier by this input or before it, with other text); this record is skipped"
            ),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains(
            "added 2 articles (0 new, 2 duplicates), 1 already indexed with the same text"
        ),
        "{}",
        stderr_of(&out)
    );
    let verdicts = lines_of(&out);
    assert_eq!(verdicts.len(), 3);
    // A re-send is not added again: its first verdict, marked as such.
    assert_eq!(
        (
            verdicts[2]["id"].as_str(),
            verdicts[2]["verdict"].as_str(),
            verdicts[2]["indexed"].as_bool()
        ),
        (Some("rate-1"), Some("new"), Some(true))
    );
    assert_eq!(
        verdicts[0].get("indexed"),
        None,
        "only re-sends say indexed"
    );
    assert_eq!(verdicts[0]["verdict"], "duplicate");
    assert_eq!(
        (
            verdicts[0]["match"].as_str(),
            verdicts[0]["cluster"].as_str()
        ),
        (Some("rate-1"), Some("rate-1"))
    );
    assert!(verdicts[0]["score"].as_f64().unwrap() > 0.5);
    assert_eq!(verdicts[1]["matches"][0]["id"], "storm-1");

    let probe = s.jsonl(
        "probe.jsonl",
        &[("rate-2", RATE_COPY), ("new-rate", RATE), ("storm-2", RATE)],
    );
    let out = index_output(&["query"], &idx, &[&probe]);
    assert_eq!(out.status.code(), Some(2), "an indexed id with other text");
    assert!(
        stderr_of(&out).contains("probe.jsonl:3: duplicate id \"storm-2\""),
        "{}",
        stderr_of(&out)
    );
    let verdicts = lines_of(&out);
    assert_eq!(
        (
            verdicts[0]["indexed"].as_bool(),
            verdicts[1]["indexed"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(verdicts[1]["match"], "rate-1");

    let out = index_output(&["stats"], &idx, &[]);
    let stats = &lines_of(&out)[0];
    assert_eq!(
        (stats["articles"].as_u64(), stats["duplicates"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        (
            stats["window_seconds"].as_u64(),
            stats["format_version"].as_u64()
        ),
        (Some(2_592_000), Some(1))
    );
    let table = stdout_of(&index_output(&["stats", "--format", "table"], &idx, &[]));
    assert!(table.contains("34 x 3") && table.contains("duplicates when added"));
    let out = index_output(&["compact"], &idx, &[]);
    assert!(out.status.success());
    assert!(
        stderr_of(&out).contains("removed 0 articles and kept 4"),
        "{}",
        stderr_of(&out)
    );
}

/// A killed `index add` (an acknowledged prefix in the index) is resumed by running it
/// again on the whole input: the rerun prints every verdict, the prefix's marked
/// `indexed`, and they are the verdicts of one uninterrupted run.
#[test]
fn rerunning_index_add_on_the_same_input_resumes_it() {
    let s = Scratch::new();
    for (level, records) in [
        ("copy", corpus(31, 400, 1_600_000_000)),
        ("story", story_corpus(32, 300, 1_600_000_000)),
    ] {
        let all = s.write(&format!("{level}.jsonl"), to_jsonl(&records));
        let prefix = s.write(&format!("{level}-prefix.jsonl"), to_jsonl(&records[..130]));
        let one_go = s.path(&format!("{level}-one-go"));
        let resumed = s.path(&format!("{level}-resumed"));
        for idx in [&one_go, &resumed] {
            index_ok(&["create", "-q", "--level", level], idx, &[]);
        }
        let one_go_run = index_output(&["add", "-q"], &one_go, &[&all]);
        let expected = lines_of(&one_go_run);
        index_ok(&["add", "-q"], &resumed, &[&prefix]);
        let out = index_output(&["add"], &resumed, &[&all]);
        assert!(out.status.success(), "{level}: {}", stderr_of(&out));
        let added = records.len() - 130;
        assert!(
            stderr_of(&out).contains(&format!("added {added} articles"))
                && stderr_of(&out).contains("130 already indexed with the same text"),
            "{level}: {}",
            stderr_of(&out)
        );
        // A query of indexed articles counts them as indexed, not also as new.
        let checked = stderr_of(&index_output(&["query"], &resumed, &[&prefix]));
        assert!(
            checked.contains("checked 130 articles (0 new, 0 duplicates")
                && checked.contains(", 130 already indexed)"),
            "{level}: {checked}"
        );
        let mut got = lines_of(&out);
        assert_eq!(got.len(), records.len());
        for (i, verdict) in got.iter_mut().enumerate() {
            let indexed = verdict.as_object_mut().unwrap().remove("indexed");
            assert_eq!(indexed.is_some(), i < 130, "{level}: verdict {i}");
        }
        assert_eq!(got, expected, "{level}");
        assert!(
            expected.iter().any(|v| v["verdict"] != "new"),
            "{level}: the corpus has matches"
        );
        let held =
            |idx: &Path| lines_of(&index_output(&["stats"], idx, &[]))[0]["articles"].clone();
        assert_eq!(held(&resumed), held(&one_go));
        // The resumed index exports the verdict stream of the uninterrupted run, byte for byte.
        let exported = index_output(&["export"], &resumed, &[]);
        assert!(exported.status.success(), "{}", stderr_of(&exported));
        assert_eq!(stdout_of(&exported), stdout_of(&one_go_run), "{level}");
        // -o writes the same to a file, compressed when its name says so.
        let (plain, zipped) = (
            s.path(&format!("export-{level}.jsonl")),
            s.path(&format!("export-{level}.jsonl.gz")),
        );
        for file in [&plain, &zipped] {
            let flags = ["export", "-o", file.to_str().unwrap()];
            let out = index_output(&flags, &resumed, &[]);
            assert!(
                out.status.success() && out.stdout.is_empty(),
                "{}",
                stderr_of(&out)
            );
        }
        assert_eq!(std::fs::read(&plain).unwrap(), exported.stdout, "{level}");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&zipped).unwrap())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, exported.stdout, "{level}");
        // Its clusters: every article once, each cluster named after its first member.
        let clusters = lines_of(&index_output(
            &["export", "--clusters", "--min-size", "1"],
            &resumed,
            &[],
        ));
        let mut members: Vec<String> = Vec::new();
        for c in &clusters {
            let list: Vec<&str> = c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            assert_eq!(
                (c["cluster"].as_str(), c["size"].as_u64()),
                (Some(list[0]), Some(list.len() as u64))
            );
            members.extend(list.iter().map(|m| m.to_string()));
        }
        assert_eq!(members.len(), records.len(), "{level}");
        for v in &expected {
            let cluster = clusters
                .iter()
                .find(|c| c["members"].as_array().unwrap().contains(&v["id"]))
                .unwrap();
            assert_eq!(cluster["cluster"], v["cluster"], "{level}: {v}");
        }
        let default = lines_of(&index_output(&["export", "--clusters"], &resumed, &[]));
        assert_eq!(
            default.len(),
            clusters
                .iter()
                .filter(|c| c["size"].as_u64() >= Some(2))
                .count()
        );
        assert!(!default.is_empty());
    }
}

/// A writer cuts an unfinished write off the end of the log, as after a crash, but says so
/// and keeps a copy: damage at the very end of a log looks the same, and acknowledged
/// articles vanished without a word (QA pass 11).
#[test]
fn a_cut_unfinished_write_is_reported_and_kept() {
    let s = Scratch::new();
    let records = corpus(41, 60, 1_600_000_000);
    let first = s.write("first.jsonl", to_jsonl(&records[..40]));
    let rest = s.write("rest.jsonl", to_jsonl(&records[40..]));
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    index_ok(&["add", "-q"], &idx, &[&first]);
    let log = idx.join("articles.0.log");
    let intact = std::fs::metadata(&log).unwrap().len();
    let torn = b"\x17\x00\x00\x00half a frame";
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(torn);
    std::fs::write(&log, bytes).unwrap();
    // -q too: this is not a warning to hide.
    let out = index_output(&["add", "-q"], &idx, &[&rest]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let kept = idx.join(format!("articles.0.log.unfinished-{intact}"));
    assert!(
        stderr_of(&out).contains(&format!(
            "cut off {} bytes after byte {intact} of the article log",
            torn.len()
        )) && stderr_of(&out).contains(&format!("a copy is kept in {}", kept.display())),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read(&kept).unwrap(), torn);
    let exported = lines_of(&index_output(&["export"], &idx, &[]));
    assert_eq!(exported.len(), records.len());
    // Opening again finds nothing to cut, and the copy stays.
    let again = index_output(&["add", "-q"], &idx, &[&rest]);
    assert!(
        !stderr_of(&again).contains("cut off"),
        "{}",
        stderr_of(&again)
    );
    assert!(kept.exists());
}

/// `watch` reads a gzip or zstd stream as every other input is read; one that breaks off
/// is an error (exit 1) after what came before it was decided and stored.
#[test]
fn watch_reads_compressed_input_and_fails_on_a_stream_that_breaks_off() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let records = to_jsonl(&corpus(9, 400, 1_700_000_000));
    // The first half of the lines, zstd-compressed; then the rest, gzip-compressed.
    let first = records[..records.len() / 2].rsplit_once('\n').unwrap().0;
    let zstd = zstd::encode_all(first.as_bytes(), 3).unwrap();
    let out = neardup()
        .arg("watch")
        .arg(&idx)
        .write_stdin(zstd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let decided = lines_of(&out).len();
    assert_eq!(decided, first.lines().count());

    let rest = records[first.len()..].trim_start();
    let gzipped = gzip(rest.as_bytes());
    let truncated = &gzipped[..gzipped.len() * 3 / 4];
    for quiet in [&[][..], &["-q"]] {
        let out = neardup()
            .arg("watch")
            .args(quiet)
            .arg(&idx)
            .write_stdin(truncated)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("error: reading standard input failed"),
            "{}",
            stderr_of(&out)
        );
        // What arrived whole before the break was decided, and is stored (the second
        // time, as already indexed).
        let answers = lines_of(&out);
        assert!(!answers.is_empty() && answers.len() < rest.lines().count());
        let stored = index_stats(&idx)["articles"].as_u64().unwrap() as usize;
        assert_eq!(stored, decided + answers.len());
    }
}

#[test]
fn watch_answers_every_line_and_shuts_down_cleanly() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = [
        serde_json::json!({"id": "a", "text": RATE}).to_string(),
        "{not json".to_string(),
        String::new(),
        serde_json::json!({"id": "b", "text": RATE_COPY}).to_string(),
        serde_json::json!({"id": "a", "text": STORM}).to_string(),
        serde_json::json!({"id": "c", "text": "  "}).to_string(),
        serde_json::json!({"id": "b", "text": RATE_COPY}).to_string(),
    ]
    .join("\n");
    let out = neardup()
        .arg("watch")
        .arg(&idx)
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "rejected lines make the exit code 2"
    );
    let answers = lines_of(&out);
    let kinds: Vec<&str> = answers
        .iter()
        .map(|a| a["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "new",
            "rejected",
            "duplicate",
            "rejected",
            "rejected",
            "duplicate"
        ]
    );
    assert!(
        answers[3]["reason"]
            .as_str()
            .unwrap()
            .contains("other text")
    );
    assert_eq!(
        (
            answers[5]["indexed"].as_bool(),
            answers[5]["match"].as_str()
        ),
        (Some(true), Some("a")),
        "a re-sent article gets its first verdict"
    );
    assert_eq!(
        (answers[1]["line"].as_u64(), answers[3]["id"].as_str()),
        (Some(2), Some("a"))
    );
    assert!(
        answers[4]["reason"]
            .as_str()
            .unwrap()
            .contains("empty text")
    );
    assert!(
        stderr_of(&out).contains("verdict latency median"),
        "{}",
        stderr_of(&out)
    );
    // The re-sent article is counted apart, not as a second stored article.
    assert!(
        stderr_of(&out)
            .contains("watch: 3 articles (1 new, 1 duplicate, 1 already indexed), 3 rejected"),
        "{}",
        stderr_of(&out)
    );
    let stats = &lines_of(&index_output(&["stats"], &idx, &[]))[0];
    assert_eq!(stats["articles"], 2);
}

#[test]
fn rejected_records_keep_a_readable_id() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = r#"{"id":"nt"}
{"id":"n1","text":null}
{"id":"e1","text":""}
{"id":7,"text":" "}
{"id":{"x":1},"text":""}
{not json
{"id":"s1","text":"","note":"\ud800"}
{"id":"n2","text":" ","size":1e999}"#;
    let out = neardup()
        .args(["watch", "-q"])
        .arg(&idx)
        .write_stdin(input)
        .output()
        .unwrap();
    let ids: Vec<serde_json::Value> = lines_of(&out).iter().map(|a| a["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            serde_json::json!("nt"),
            "n1".into(),
            "e1".into(),
            "7".into(),
            serde_json::Value::Null,
            serde_json::Value::Null,
            // Read as the reader reads records: a field besides the id and text that a
            // JSON value could not hold (a lone surrogate, a number beyond f64) is kept
            // raw, so the id still reads.
            "s1".into(),
            "n2".into(),
        ]
    );
}

#[test]
fn watch_says_so_when_its_verdict_output_is_closed() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = s.write("feed.jsonl", to_jsonl(&corpus(9, 3000, 1_700_000_000)));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .arg("watch")
        .arg(&idx)
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `watch … | head -1`: one verdict read, then the reader goes away.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the verdict output was closed"), "{err}");
    let stored: u64 = err
        .split(" articles were stored")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    let stats = &lines_of(&index_output(&["stats"], &idx, &[]))[0];
    assert_eq!(stats["articles"].as_u64(), Some(stored), "{err}");
    assert!(stored >= 1);
    // Sending it all again gives every verdict, the stored ones marked as indexed.
    let again = neardup()
        .arg("watch")
        .arg(&idx)
        .arg("-q")
        .pipe_stdin(&input)
        .unwrap()
        .output()
        .unwrap();
    assert!(again.status.success());
    let verdicts = lines_of(&again);
    assert_eq!(verdicts.len(), 3000);
    let indexed = verdicts.iter().filter(|v| v["indexed"] == true).count();
    assert_eq!(indexed as u64, stored);
}

/// Waits until `watch` holds the index's lock (its pid is in the lock file).
fn wait_for_lock(idx: &Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(idx.join("lock"))
        .unwrap_or_default()
        .trim()
        != pid.to_string()
    {
        assert!(Instant::now() < deadline, "watch did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_writer_at_a_time_and_signals_stop_watch_cleanly() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .arg("watch")
        .arg(&idx)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = watch.stdin.take().unwrap();
    writeln!(stdin, "{}", serde_json::json!({"id": "a", "text": RATE})).unwrap();
    stdin.flush().unwrap();
    // The verdict arrives while watch keeps running.
    let mut stdout = watch.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8];
    while first.last() != Some(&b'\n') {
        stdout.read_exact(&mut byte).unwrap();
        first.push(byte[0]);
    }
    assert!(
        String::from_utf8(first)
            .unwrap()
            .contains(r#""verdict":"new""#)
    );
    wait_for_lock(&idx, watch.id());
    let f = s.jsonl("more.jsonl", &[("b", RATE_COPY)]);
    let out = index_output(&["add"], &idx, &[&f]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr_of(&out);
    assert!(
        message.contains(&format!(
            "is open for writing by another process (pid {})",
            watch.id()
        )),
        "{message}"
    );
    // Readers run alongside the writer and see what it committed.
    let out = index_output(&["query"], &idx, &[&f]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(lines_of(&out)[0]["match"], "a");
    // SIGTERM: a clean stop with the summary, exit code 0.
    send_signal(watch.id(), "TERM");
    let status = watch.wait().unwrap();
    let mut err = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status:?} {err}");
    assert!(err.contains("stopped by signal"), "{err}");
    drop(stdin);
    // The lock is free again.
    index_ok(&["add", "-q"], &idx, &[&f]);
}

/// Removing `DIR/lock` (it looks like a leftover) lets no second writer in while the
/// first holds the index, in this process or another; the first goes on (QA 25, M4).
/// An index directory named with a newline is shown escaped in summaries and errors: it
/// forged a second `neardup:` line (review of the twenty-fifth session).
#[test]
fn an_index_directory_named_with_a_newline_stays_on_one_line() {
    let s = Scratch::new();
    let idx = s.path("n\nneardup: fake");
    let created = neardup()
        .args(["index", "create"])
        .arg(&idx)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr_of(&created));
    let log = idx.join("articles.0.log");
    std::fs::remove_file(&log).unwrap();
    std::fs::create_dir(&log).unwrap();
    let stats = neardup()
        .args(["index", "stats"])
        .arg(&idx)
        .output()
        .unwrap();
    assert!(!stats.status.success());
    for out in [&created, &stats] {
        let err = stderr_of(out);
        assert!(err.contains("n\\nneardup: fake"), "{err}");
        assert!(
            !err.lines().any(|l| l.starts_with("neardup: fake")),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn removing_the_lock_file_lets_no_second_writer_in() {
    let s = Scratch::new();
    let idx = s.path("idx");
    FeedIndex::create(&idx, &settings_of(PipelineBuilder::new(), None)).unwrap();
    let mut first = FeedIndex::open(&idx, Access::Write, &Silent).unwrap();
    std::fs::remove_file(idx.join("lock")).unwrap();
    let e = FeedIndex::open(&idx, Access::Write, &Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is open for writing by"), "{e}");
    let f = s.jsonl("more.jsonl", &[("b", RATE_COPY)]);
    let inputs: [&[&Path]; 3] = [&[&f], &[], &[]];
    for (args, inputs) in [["add"], ["compact"], ["repair"]].iter().zip(inputs) {
        let out = index_output(args, &idx, inputs);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let message = stderr_of(&out);
        assert!(
            message.contains("is open for writing by another process")
                && message.contains("only one process may write to an index at a time"),
            "{args:?}: {message}"
        );
    }
    // Again with a `lock` another process made and left.
    std::fs::write(idx.join("lock"), "").unwrap();
    assert!(FeedIndex::open(&idx, Access::Write, &Silent).is_err());
    let a = article(&first, "a", RATE, None);
    first.add(&a).unwrap().unwrap();
    first.commit().unwrap();
    drop(first);
    index_ok(&["add", "-q"], &idx, &[&f]);
    let index = FeedIndex::open(&idx, Access::Read, &Silent).unwrap();
    assert_eq!(index.len(), 2);
}

/// `index query -` on a pipe answers each line as it arrives, not once a batch of
/// `--commit-every` lines fills or the input ends (QA 25, L1).
#[test]
fn index_query_answers_each_line_of_a_pipe_as_it_arrives() {
    use std::io::BufRead;
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let f = s.jsonl("first.jsonl", &[("rate-1", RATE)]);
    index_ok(&["add", "-q"], &idx, &[&f]);
    let mut query = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["index", "query", "-q"])
        .arg(&idx)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = query.stdin.take().unwrap();
    let stdout = query.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if line.map(|l| tx.send(l)).is_err() {
                break;
            }
        }
    });
    for (id, text, verdict) in [("rate-2", RATE_COPY, "duplicate"), ("storm", STORM, "new")] {
        writeln!(stdin, "{}", serde_json::json!({"id": id, "text": text})).unwrap();
        stdin.flush().unwrap();
        let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = query.kill();
            panic!("no verdict for {id} while its input stayed open");
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["verdict"].as_str()),
            (Some(id), Some(verdict))
        );
    }
    drop(stdin);
    assert!(query.wait().unwrap().success());
}

/// Sends a signal with the system's `kill` (the tests need no signal crate of their own).
fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

// ---------------------------------------------------------------------------------------
// Crash safety: SIGKILL at random moments.

/// Starts neardup with `args`, `stdin` as its standard input (none when `None`) and its
/// standard output piped.
fn spawn_piped(args: &[&std::ffi::OsStr], stdin: Option<&Path>) -> std::process::Child {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("neardup"));
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match stdin {
        Some(path) => command.stdin(std::fs::File::open(path).unwrap()),
        None => command.stdin(Stdio::null()),
    };
    command.spawn().unwrap()
}

/// Runs `args` (with `stdin` as standard input when given), kills it with SIGKILL after
/// `delay`, and returns the complete lines it printed: its acknowledged verdicts.
fn run_and_kill(args: &[&std::ffi::OsStr], stdin: Option<&Path>, delay: Duration) -> Vec<String> {
    let mut child = spawn_piped(args, stdin);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL on Unix
    child.wait().unwrap();
    let text = reader.join().unwrap();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(str::to_string).collect()
}

/// Runs neardup and kills it (SIGKILL) `then` after it has written `after_lines` lines
/// on standard output (or after `then` at once when `after_lines` is 0, or when it ends
/// first); returns the complete lines it wrote.
fn run_and_kill_after(
    args: &[&std::ffi::OsStr],
    stdin: Option<&Path>,
    after_lines: usize,
    then: Duration,
) -> Vec<String> {
    use std::io::BufRead;
    let mut child = spawn_piped(args, stdin);
    let stdout = child.stdout.take().unwrap();
    let (reached, reached_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = std::io::BufReader::new(stdout);
        let (mut complete, mut line) = (Vec::new(), Vec::new());
        loop {
            line.clear();
            match stdout.read_until(b'\n', &mut line) {
                Ok(_) if line.ends_with(b"\n") => {
                    line.pop();
                    complete.push(String::from_utf8(line.clone()).unwrap());
                    if complete.len() == after_lines {
                        let _ = reached.send(());
                    }
                }
                // The end, or a last line cut off by the kill.
                _ => return complete,
            }
        }
    });
    if after_lines > 0 {
        // Returns when the lines were read, or at once when the reader ended (its
        // sender dropped) having read fewer.
        let _ = reached_rx.recv_timeout(Duration::from_secs(120));
    }
    std::thread::sleep(then);
    let _ = child.kill();
    child.wait().unwrap();
    reader.join().unwrap()
}

fn crash_rounds() -> usize {
    std::env::var("NEARDUP_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

/// Adds a corpus in runs killed with SIGKILL at random moments, alternating `index add`
/// and `watch` (with both durabilities), each run going on from the first article not yet in the index. After
/// every kill the index opens and holds every acknowledged article, with the verdict it
/// was acknowledged with; a last `index add` of the whole input completes the index (the
/// resume of a killed bulk add), and every verdict equals that of an index built without
/// crashes (articles were added in the same order).
#[test]
fn acknowledged_articles_survive_sigkill_at_random_moments() {
    let rounds = crash_rounds();
    sigkill_rounds(
        &[],
        &corpus(77, 3000.max(rounds * 250), 1_700_000_000),
        rounds,
    );
}

/// The same at the story level (rewrite verdicts, story records, accumulated statistics,
/// which must be rebuilt exactly from the log after every kill).
#[test]
fn story_level_acknowledged_articles_survive_sigkill_at_random_moments() {
    let rounds = crash_rounds().div_ceil(2);
    let records = story_corpus(79, 2000.max(rounds * 250), 1_700_000_000);
    sigkill_rounds(&["--level", "story"], &records, rounds);
}

fn sigkill_rounds(create_args: &[&str], records: &[serde_json::Value], rounds: usize) {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", to_jsonl(records));
    let idx = s.path("idx");
    let reference = s.path("reference");
    for dir in [&idx, &reference] {
        neardup()
            .args(["index", "create", "-q"])
            .args(create_args)
            .arg(dir)
            .assert()
            .success();
    }
    // Small commit groups: many moments to kill at between and during commits.
    let clean = index_output(
        &["add", "-q", "--commit-every", "25"],
        &reference,
        &[&input],
    );
    let expected: HashMap<String, serde_json::Value> = lines_of(&clean)
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect();
    assert_eq!(expected.len(), records.len());

    let seed = std::env::var("NEARDUP_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut rng = Rng(seed);
    let mut acknowledged: HashMap<String, serde_json::Value> = HashMap::new();
    let mut held = 0;
    let mut kills = 0;
    for round in 0..rounds {
        if held == records.len() {
            break;
        }
        // Each run is killed once it has acknowledged a random part of its share of the
        // rest, up to a millisecond later still, so that the kill falls anywhere in a
        // commit (a commit group takes about half a millisecond, and the run goes on
        // while the acknowledgements are read); every third run is killed within its
        // first 12 ms, while starting up or in its first commits. Counting acknowledgements rather than time keeps the
        // corpus lasting all the rounds whatever the machine's speed: time-based kills,
        // tuned on one run's speed, let a whole rest through when the machine sped up (a
        // build ending beside the test).
        let share = (records.len() - held).div_ceil(rounds - round);
        let after_lines = if round % 3 == 2 {
            0
        } else {
            rng.below(share as u64) as usize
        };
        let then = Duration::from_millis(rng.below(if after_lines == 0 { 12 } else { 2 }));
        let rest = s.write("rest.jsonl", to_jsonl(&records[held..]));
        let lines = if round % 2 == 0 {
            let args = ["index", "add", "-q", "--commit-every", "25"].map(std::ffi::OsStr::new);
            run_and_kill_after(
                &[&args[..], &[idx.as_os_str(), rest.as_os_str()]].concat(),
                None,
                after_lines,
                then,
            )
        } else {
            // Both durabilities: a verdict after the fsync, or after the write to the OS.
            let durability = if round % 4 == 1 { "disk" } else { "process" };
            let args = [
                "watch",
                "-q",
                "--max-group",
                "25",
                "--durability",
                durability,
            ]
            .map(std::ffi::OsStr::new);
            run_and_kill_after(
                &[&args[..], &[idx.as_os_str()]].concat(),
                Some(&rest),
                after_lines,
                then,
            )
        };
        kills += 1;
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_ne!(v["verdict"], "rejected", "{v}");
            acknowledged.insert(v["id"].as_str().unwrap().to_string(), v);
        }
        let out = index_output(&["stats"], &idx, &[]);
        assert!(out.status.success(), "round {round}: {}", stderr_of(&out));
        held = lines_of(&out)[0]["articles"].as_u64().unwrap() as usize;
        assert!(
            held >= acknowledged.len(),
            "round {round}: {held} < {}",
            acknowledged.len()
        );
        eprintln!(
            "crash round {round}: killed {then:?} after acknowledging {after_lines}; {} \
             acknowledged in all, {held} indexed",
            acknowledged.len()
        );
    }
    assert!(
        kills >= rounds / 2,
        "most runs were killed before the corpus was through"
    );
    assert!(
        !acknowledged.is_empty(),
        "some runs got far enough to acknowledge articles"
    );
    // Every acknowledged verdict is there, exactly as it was acknowledged.
    let out = index_output(&["query", "-q"], &idx, &[&input]);
    let stored: HashMap<String, serde_json::Value> = lines_of(&out)
        .into_iter()
        .map(|v| (v["id"].as_str().unwrap().to_string(), v))
        .collect();
    for (id, mut v) in acknowledged {
        v["indexed"] = true.into();
        assert_eq!(stored[&id], v, "acknowledged article {id}");
    }
    // Finish without a crash by rerunning `index add` on the whole input: it adds what
    // is missing and prints every verdict, which are those of the index built in one go.
    let out = index_output(&["add", "-q"], &idx, &[&input]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let rerun = lines_of(&out);
    assert_eq!(rerun.len(), records.len());
    for mut v in rerun {
        let id = v["id"].as_str().unwrap().to_string();
        let resent = v.as_object_mut().unwrap().remove("indexed").is_some();
        assert_eq!(
            v, expected[&id],
            "rerun verdict of {id} (re-sent: {resent})"
        );
    }
    let out = index_output(&["query", "-q"], &idx, &[&input]);
    let verdicts = lines_of(&out);
    assert_eq!(verdicts.len(), records.len());
    for mut v in verdicts {
        let id = v["id"].as_str().unwrap().to_string();
        assert_eq!(v["indexed"], true);
        v.as_object_mut().unwrap().remove("indexed");
        assert_eq!(v, expected[&id], "final verdict of {id}");
    }
}

/// `index remove` takes articles out for good, at both levels: the index then answers
/// as one built without them, and a removed id may be added again.
#[test]
fn removing_a_cluster_founder_updates_the_cluster_count() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = s.write(
        "ab.jsonl",
        to_jsonl(&[
            serde_json::json!({"id": "a", "text": RATE}),
            serde_json::json!({"id": "b", "text": RATE}),
        ]),
    );
    index_ok(&["add", "-q"], &idx, &[&input]);
    let clusters =
        || lines_of(&index_output(&["stats"], &idx, &[]))[0]["clusters_with_duplicates"].clone();
    assert_eq!(clusters(), 1);
    index_ok(&["remove", "-q"], &idx, &[Path::new("a")]);
    // As `export --clusters` lists them: b alone is no cluster of two.
    assert_eq!(clusters(), 0);
    assert!(lines_of(&index_output(&["export", "--clusters"], &idx, &[])).is_empty());
}

#[test]
fn index_remove_takes_articles_out_for_good() {
    let s = Scratch::new();
    let records = story_corpus(41, 240, 1_700_000_000);
    let input = s.write("all.jsonl", to_jsonl(&records));
    let id = |r: &serde_json::Value| r["id"].as_str().unwrap().to_string();
    // Every eighth article, which takes out originals with copies and copies alike.
    let (removed, kept): (Vec<_>, Vec<_>) =
        records.iter().enumerate().partition(|(i, _)| i % 8 == 3);
    let removed: Vec<serde_json::Value> = removed.into_iter().map(|(_, r)| r.clone()).collect();
    let kept: Vec<serde_json::Value> = kept.into_iter().map(|(_, r)| r.clone()).collect();
    let ids_file = s.write(
        "ids.txt",
        removed.iter().map(|r| id(r) + "\n").collect::<String>() + "\nnot-indexed\n",
    );
    let removed_file = s.write("removed.jsonl", to_jsonl(&removed));
    for level in ["copy", "story"] {
        let idx = s.path(&format!("idx-{level}"));
        let fresh = s.path(&format!("fresh-{level}"));
        for dir in [&idx, &fresh] {
            index_ok(&["create", "-q", "--level", level], dir, &[]);
        }
        index_ok(&["add", "-q"], &idx, &[&input]);
        index_ok(
            &["add", "-q"],
            &fresh,
            &[&s.write("kept.jsonl", to_jsonl(&kept))],
        );
        let out = neardup()
            .args(["index", "remove"])
            .arg(&idx)
            .arg(id(&kept[0]))
            .arg("--ids-from")
            .arg(&ids_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let said = lines_of(&out);
        assert_eq!(said.len(), removed.len() + 2);
        assert_eq!(said[0]["removed"], true);
        assert!(said[1..=removed.len()].iter().all(|l| l["removed"] == true));
        assert_eq!(said.last().unwrap()["removed"], false, "not-indexed");
        assert!(
            stderr_of(&out).contains(&format!("removed {} articles", removed.len() + 1)),
            "{}",
            stderr_of(&out)
        );
        // Held: the rest, in the order added; the removed ones are answered as by an
        // index that never had them (statistics included, at the story level).
        let held: Vec<String> = lines_of(&index_output(&["export"], &idx, &[]))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = kept[1..].iter().map(id).collect();
        assert_eq!(held, expected, "{level}");
        index_ok(&["remove", "-q"], &fresh, &[Path::new(&id(&kept[0]))]);
        let answers =
            |dir: &Path| stdout_of(&index_output(&["query", "-q"], dir, &[&removed_file]));
        let from_removed = answers(&idx);
        assert!(!from_removed.contains("\"indexed\":true"), "{from_removed}");
        // Verdicts, matches, scores and kinds alike; a cluster may still bear the name of
        // a removed article that began it (stored verdicts are kept as given).
        let removed_ids: std::collections::HashSet<String> = removed.iter().map(id).collect();
        let fresh_answers = json_lines(&answers(&fresh));
        assert_eq!(fresh_answers.len(), removed.len());
        for (mut got, mut want) in json_lines(&from_removed).into_iter().zip(fresh_answers) {
            let (cluster, fresh_cluster) = (got["cluster"].take(), want["cluster"].take());
            assert_eq!(got, want, "{level}");
            let named_removed = removed_ids.contains(cluster.as_str().unwrap());
            assert!(cluster == fresh_cluster || named_removed, "{level}: {got}");
        }
        // A removed id comes back as a new article when added again.
        let out = index_output(&["add"], &idx, &[&removed_file]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(lines_of(&out).len(), removed.len());
        assert_eq!(
            index_stats(&idx)["articles"],
            (kept.len() - 1 + removed.len()) as u64
        );
    }
    // Nothing to remove is said, not silently done.
    let out = index_output(&["remove"], &s.path("idx-copy"), &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no id to remove"),
        "{}",
        stderr_of(&out)
    );
}

/// Compaction, or removal, killed at random moments leaves the old or the new generation
/// in force, never a mix, and the index opens and takes new articles afterwards.
#[test]
fn compaction_survives_sigkill() {
    let s = Scratch::new();
    let records = corpus(78, 1500, 1_600_000_000);
    let input = s.write("corpus.jsonl", to_jsonl(&records));
    // Removing the 1,019 oldest by id leaves what compacting to the window leaves.
    let oldest = s.write(
        "oldest.txt",
        records[..1019]
            .iter()
            .map(|r| format!("{}\n", r["id"].as_str().unwrap()))
            .collect::<String>(),
    );
    let mut rng = Rng(11);
    for round in 0..crash_rounds().div_ceil(2) {
        let idx = s.path(&format!("idx-{round}"));
        index_ok(&["create", "-q", "--window", "20d"], &idx, &[]);
        index_ok(&["add", "-q"], &idx, &[&input]);
        let delay = Duration::from_millis(rng.below(150));
        let rewrite: Vec<&std::ffi::OsStr> = if round % 2 == 0 {
            vec!["index".as_ref(), "compact".as_ref(), idx.as_os_str()]
        } else {
            let ids = ["index", "remove", "--ids-from"].map(std::ffi::OsStr::new);
            [&ids[..], &[oldest.as_os_str(), idx.as_os_str()]].concat()
        };
        run_and_kill(&rewrite, None, delay);
        let out = index_output(&["stats"], &idx, &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let held = lines_of(&out)[0]["articles"].as_u64().unwrap();
        // Dates are an hour apart: a 20-day window keeps the newest 481 articles.
        assert!(
            held == 1500 || held == 481,
            "round {round}: {held} articles"
        );
        index_ok(&["compact", "-q"], &idx, &[]);
        let out = index_output(&["query", "-q"], &idx, &[&input]);
        let verdicts = lines_of(&out);
        let indexed = verdicts.iter().filter(|v| v["indexed"] == true).count();
        assert_eq!(indexed, 481);
        assert!(verdicts[..1019].iter().all(|v| v["indexed"] == false));
    }
}

// ---------------------------------------------------------------------------------------
// Repairing a damaged index.

/// `(offset, length)` of every frame of an article log's bytes.
fn frames_of(log: &[u8]) -> Vec<(u64, u64)> {
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 8 <= log.len() {
        let len = 8 + u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        frames.push((at as u64, len as u64));
        at += len;
    }
    frames
}

/// Copies the files of the index `from` (not its lock) into a new directory `to`.
fn copy_index(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// `index export` of `idx`, one line per article.
fn exported(idx: &Path) -> Vec<String> {
    let out = index_output(&["export"], idx, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    stdout_of(&out).lines().map(str::to_string).collect()
}

/// The `.damaged` files an index directory holds.
fn damaged_files(idx: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(idx)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".damaged"))
        .collect();
    names.sort();
    names
}

/// A byte flipped in the middle of each frame `hit` of a copy of the index `built`:
/// `index repair` keeps every other article, reports each damaged frame's bytes, keeps
/// the damaged log aside byte for byte, and leaves an index that answers exactly as one
/// built from the kept articles alone, in order, and that stats, add and watch take.
#[test]
fn index_repair_keeps_every_intact_article_as_if_added_alone() {
    let s = Scratch::new();
    let records = story_corpus(53, 120, 1_700_000_000);
    let input = s.write("all.jsonl", to_jsonl(&records));
    let mut late = story_corpus(54, 10, 1_700_000_000 + 100 * 3600);
    for r in &mut late {
        r["id"] = format!("late-{}", r["id"].as_str().unwrap()).into();
    }
    let late = s.write("late.jsonl", to_jsonl(&late));
    for level in ["copy", "story"] {
        let built = s.path(&format!("built-{level}"));
        index_ok(&["create", "-q", "--level", level], &built, &[]);
        index_ok(&["add", "-q"], &built, &[&input]);
        let before = exported(&built);
        let good = std::fs::read(built.join("articles.0.log")).unwrap();
        let frames = frames_of(&good);
        assert_eq!(frames.len(), records.len());
        let mut changed_somewhere = 0;
        let cases: [(&str, &[usize]); 3] = [
            ("middle", &[60]),
            ("first", &[0]),
            ("two-places", &[17, 90]),
        ];
        for (case, hit) in cases {
            let what = format!("{level}, {case}");
            let idx = s.path(&format!("idx-{level}-{case}"));
            copy_index(&built, &idx);
            let mut bad = good.clone();
            for &k in hit {
                let (offset, len) = frames[k];
                bad[(offset + len / 2) as usize] ^= 0xFF;
            }
            std::fs::write(idx.join("articles.0.log"), &bad).unwrap();
            let out = index_output(&["stats"], &idx, &[]);
            assert!(!out.status.success(), "{what}");
            let refusal = stderr_of(&out);
            let hint = format!("'neardup index repair {}'", idx.display());
            assert!(refusal.contains(&hint), "{what}: {refusal}");

            let out = index_output(&["repair", "--format", "jsonl"], &idx, &[]);
            assert!(out.status.success(), "{what}: {}", stderr_of(&out));
            let report = lines_of(&out).remove(0);
            let kept: Vec<serde_json::Value> = records
                .iter()
                .enumerate()
                .filter(|(i, _)| !hit.contains(i))
                .map(|(_, r)| r.clone())
                .collect();
            let damaged: Vec<serde_json::Value> = hit
                .iter()
                .map(|&k| serde_json::json!({"offset": frames[k].0, "bytes": frames[k].1}))
                .collect();
            let aside = idx.join("articles.0.log.damaged");
            assert_eq!(report["outcome"], "repaired", "{what}");
            assert_eq!(report["kept"], kept.len() as u64, "{what}");
            assert_eq!(report["damaged"], serde_json::json!(damaged), "{what}");
            assert_eq!(report["header_damaged"], false, "{what}");
            assert_eq!(
                report["unfinished_write"],
                serde_json::Value::Null,
                "{what}"
            );
            assert_eq!(report["repaired_generation"], 1, "{what}");
            assert_eq!(report["kept_aside"], aside.display().to_string(), "{what}");
            let summary = stderr_of(&out);
            for said in [
                format!("kept {} intact articles", kept.len()),
                format!("{} bytes at byte {}", frames[hit[0]].1, frames[hit[0]].0),
                format!("kept as {}", aside.display()),
            ] {
                assert!(summary.contains(&said), "{what}: {summary}");
            }
            // Nothing is lost: the damaged log is kept whole; the new one replaced it.
            assert_eq!(std::fs::read(&aside).unwrap(), bad, "{what}");
            assert!(!idx.join("articles.0.log").exists(), "{what}");

            // As if the kept articles had been added alone, in order.
            let fresh = s.path(&format!("fresh-{level}-{case}"));
            index_ok(&["create", "-q", "--level", level], &fresh, &[]);
            let kept_file = s.write(&format!("kept-{level}-{case}.jsonl"), to_jsonl(&kept));
            index_ok(&["add", "-q"], &fresh, &[&kept_file]);
            let repaired = exported(&idx);
            assert_eq!(repaired, exported(&fresh), "{what}");
            // The verdicts said to have changed are those that now read otherwise.
            let was: HashMap<String, &String> = before
                .iter()
                .map(|l| (json_lines(l)[0]["id"].as_str().unwrap().to_string(), l))
                .collect();
            let changed: Vec<String> = repaired
                .iter()
                .filter_map(|l| {
                    let id = json_lines(l)[0]["id"].as_str().unwrap().to_string();
                    (was[&id] != l).then_some(id)
                })
                .collect();
            assert_eq!(
                report["verdicts_changed"],
                serde_json::json!(changed),
                "{what}"
            );
            changed_somewhere += changed.len();

            // The repaired index takes articles as the fresh one does, through add and
            // watch alike.
            assert_eq!(index_stats(&idx)["articles"], kept.len() as u64, "{what}");
            let added = |dir: &Path| stdout_of(&index_output(&["add", "-q"], dir, &[&late]));
            assert_eq!(added(&idx), added(&fresh), "{what}");
            let watched = neardup()
                .arg("watch")
                .arg(&idx)
                .write_stdin(to_jsonl(&records[..3]))
                .output()
                .unwrap();
            assert!(watched.status.success(), "{what}: {}", stderr_of(&watched));
            let answers = lines_of(&watched);
            let indexed = answers.iter().filter(|v| v["indexed"] == true).count();
            assert_eq!(
                (answers.len(), indexed),
                (3, (0..3).filter(|i| !hit.contains(i)).count()),
                "{what}"
            );
        }
        // Decided again, not copied: articles matched to a damaged one now read otherwise.
        assert!(changed_somewhere > 0, "{level}");
    }
}

/// A whole index is left byte for byte as it was; a log ending in an unfinished write
/// has only that cut off; a log cut inside its header leaves an empty index; and
/// --discard-damaged keeps nothing aside.
#[test]
fn index_repair_changes_only_what_is_damaged() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = s.jsonl("in.jsonl", &good_records());
    index_ok(&["add", "-q"], &idx, &[&input]);
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != "lock") // holds the last writer's pid
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    };
    let log = idx.join("articles.0.log");
    let good = std::fs::read(&log).unwrap();
    let whole = files(&idx);
    let repair = |args: &[&str]| {
        let out = index_output(&[&["repair", "--format", "json"], args].concat(), &idx, &[]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        (lines_of(&out).remove(0), stderr_of(&out))
    };
    let (report, summary) = repair(&[]);
    assert_eq!(report["outcome"], "nothing_to_repair");
    assert_eq!(report["kept"], 4);
    assert!(summary.contains("nothing to repair"), "{summary}");
    assert_eq!(files(&idx), whole, "not a byte changed");

    // An unfinished write: cut off, as a writer cuts it, a copy of it kept beside the log
    // (deleted with --discard-damaged).
    let frames = frames_of(&good);
    let (offset, len) = frames[3];
    let mut torn = good.clone();
    let cut = &good[offset as usize..(offset + len / 2) as usize];
    torn.extend_from_slice(cut);
    for discard in [false, true] {
        std::fs::write(&log, &torn).unwrap();
        let flags: &[&str] = if discard { &["--discard-damaged"] } else { &[] };
        let (report, summary) = repair(flags);
        assert_eq!(report["outcome"], "cut_unfinished_write");
        assert_eq!(
            report["unfinished_write"],
            serde_json::json!({"offset": good.len(), "bytes": len / 2})
        );
        assert!(summary.contains("cut off an unfinished write"), "{summary}");
        let copy = idx.join(format!("articles.0.log.unfinished-{}", good.len()));
        if discard {
            assert_eq!(report["kept_aside"], serde_json::Value::Null);
        } else {
            assert_eq!(report["kept_aside"], copy.to_str().unwrap());
            assert!(
                summary.contains("a copy of the bytes cut off is kept as"),
                "{summary}"
            );
            assert_eq!(std::fs::read(&copy).unwrap(), cut);
            std::fs::remove_file(&copy).unwrap();
        }
        assert_eq!(files(&idx), whole);
    }

    // Damage with --discard-damaged: repaired, the damaged log deleted.
    let mut bad = good.clone();
    bad[(frames[1].0 + 30) as usize] ^= 0xFF;
    std::fs::write(&log, &bad).unwrap();
    let (report, summary) = repair(&["--discard-damaged", "-q"]);
    assert_eq!(
        (report["outcome"].as_str(), report["kept"].as_u64()),
        (Some("repaired"), Some(3))
    );
    assert_eq!(report["kept_aside"], serde_json::Value::Null);
    assert!(summary.is_empty(), "{summary}");
    assert!(damaged_files(&idx).is_empty());
    assert_eq!(
        std::fs::read_dir(&idx).unwrap().count(),
        3,
        "index.meta, lock and articles.1.log"
    );

    // A log cut inside its header holds no article: an empty index, the bytes aside.
    let log = idx.join("articles.1.log");
    let cut = std::fs::read(&log).unwrap()[..10].to_vec();
    std::fs::write(&log, &cut).unwrap();
    let e = stderr_of(&index_output(&["stats"], &idx, &[]));
    assert!(e.contains("cut short"), "{e}");
    let (report, summary) = repair(&[]);
    assert_eq!(report["kept"], 0);
    assert_eq!(report["header_damaged"], true);
    assert_eq!(
        report["damaged"],
        serde_json::json!([{"offset": 0, "bytes": 10}])
    );
    assert!(
        summary.contains("the index is now empty: add the articles again"),
        "{summary}"
    );
    assert_eq!(
        std::fs::read(idx.join("articles.1.log.damaged")).unwrap(),
        cut
    );
    assert_eq!(index_stats(&idx)["articles"], 0);
    index_ok(&["add", "-q"], &idx, &[&input]);
    assert_eq!(index_stats(&idx)["articles"], 4);

    // Not an index, or no log: said, nothing made.
    let out = index_output(&["repair"], &s.path("nothing"), &[]);
    assert!(
        stderr_of(&out).contains("not a neardup index"),
        "{}",
        stderr_of(&out)
    );
    std::fs::remove_file(idx.join("articles.2.log")).unwrap();
    let out = index_output(&["repair"], &idx, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("has no article log articles.2.log"),
        "{}",
        stderr_of(&out)
    );
}

/// A flipped bit in a log's header was reported as "no neardup header", as if the index
/// were lost, though `index repair` keeps every article (QA pass 11); damaged settings,
/// which cannot be repaired, say what to do instead.
#[test]
fn damaged_headers_say_what_to_do() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let input = s.jsonl("in.jsonl", &good_records());
    index_ok(&["add", "-q"], &idx, &[&input]);
    let log = idx.join("articles.0.log");
    let good = std::fs::read(&log).unwrap();
    for byte in [2, 9, 14, 21] {
        let mut bad = good.clone();
        bad[byte] ^= 1;
        std::fs::write(&log, &bad).unwrap();
        for (command, inputs) in [("stats", vec![]), ("add", vec![input.as_path()])] {
            let out = index_output(&[command], &idx, &inputs);
            assert_eq!(out.status.code(), Some(1));
            let e = stderr_of(&out);
            assert!(
                e.contains("the header is damaged") && e.contains("'neardup index repair "),
                "byte {byte}, {command}: {e}"
            );
        }
        std::fs::write(&log, &good).unwrap();
    }
    let mut bad = good.clone();
    bad[2] ^= 1;
    std::fs::write(&log, &bad).unwrap();
    let out = index_output(&["repair", "--format", "json"], &idx, &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report = &lines_of(&out)[0];
    assert_eq!(
        (report["kept"].as_u64(), report["header_damaged"].as_bool()),
        (Some(4), Some(true))
    );
    assert_eq!(index_stats(&idx)["articles"], 4);

    // In its body or in its header (QA pass 12: "not a neardup index").
    let meta = idx.join("index.meta");
    let good = std::fs::read(&meta).unwrap();
    for byte in [good.len() / 2, 3] {
        let mut bad = good.clone();
        bad[byte] ^= 1;
        std::fs::write(&meta, &bad).unwrap();
        for command in ["stats", "repair"] {
            let e = stderr_of(&index_output(&[command], &idx, &[]));
            assert!(
                e.contains("index.meta is damaged")
                    && e.contains("create a new index and add the articles again"),
                "byte {byte}, {command}: {e}"
            );
        }
    }
}

/// Another writer holds the index: repair is refused and changes nothing.
#[test]
fn index_repair_is_refused_while_another_writer_holds_the_index() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    index_ok(
        &["add", "-q"],
        &idx,
        &[&s.jsonl("in.jsonl", &good_records())],
    );
    let log = std::fs::read(idx.join("articles.0.log")).unwrap();
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .arg("watch")
        .arg(&idx)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lock(&idx, watch.id());
    let out = index_output(&["repair"], &idx, &[]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr_of(&out);
    assert!(
        message.contains(&format!(
            "is open for writing by another process (pid {})",
            watch.id()
        )),
        "{message}"
    );
    drop(watch.stdin.take());
    assert!(watch.wait().unwrap().success());
    assert_eq!(std::fs::read(idx.join("articles.0.log")).unwrap(), log);
    assert!(damaged_files(&idx).is_empty());
}

/// A file named `name` in `dir` or in a directory inside it.
fn holds_file(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name() == name || e.path().join(name).exists() && e.path().is_dir())
    })
}

/// `index create` killed at random moments (some as soon as its statistics are written)
/// leaves no index or a whole one, never a directory that is neither (before, one with
/// `story.stats` and no `index.meta` that every command refused, `create` included). A
/// directory it was building in is not taken for an index, and the next `create`
/// removes it.
#[test]
fn a_killed_index_create_leaves_no_index_or_a_whole_one() {
    let s = Scratch::new();
    // Many distinct words: a statistics file of megabytes, slow to write and sync.
    let mut rng = Rng(31);
    let records: Vec<serde_json::Value> = (0..4000)
        .map(|i| {
            let words: Vec<String> = (0..120)
                .map(|_| format!("x{}", rng.below(1 << 40)))
                .collect();
            serde_json::json!({"id": format!("d{i}"), "text": words.join(" ")})
        })
        .collect();
    let input = s.write("corpus.jsonl", to_jsonl(&records));
    let stats = s.path("big.stats");
    let out = neardup()
        .args(["stats", "count", "-q", "-o"])
        .arg(&stats)
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let parent = s.path("runs");
    std::fs::create_dir(&parent).unwrap();
    let idx = parent.join("kc");
    let mut rng = Rng(32);
    let (mut interrupted, mut leftovers) = (0, 0);
    for round in 0..40 {
        let _ = std::fs::remove_dir_all(&idx);
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
            .args(["index", "create", "-q", "--level", "story", "--stats"])
            .arg(&stats)
            .arg(&idx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Half the rounds: killed as soon as story.stats is written, wherever.
        let deadline = Instant::now() + Duration::from_millis(rng.below(60));
        while child.try_wait().unwrap().is_none()
            && !(round % 2 == 0 && holds_file(&parent, "story.stats"))
            && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let left: Vec<String> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "kc")
            .collect();
        if idx.exists() {
            let out = index_output(&["stats"], &idx, &[]);
            assert!(
                out.status.success(),
                "round {round}: {:?} is neither absent nor an index: {}",
                std::fs::read_dir(&idx)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect::<Vec<_>>(),
                stderr_of(&out)
            );
            assert!(left.is_empty(), "round {round}: {left:?}");
        } else {
            assert!(!finished, "round {round}");
            interrupted += 1;
            if let Some(name) = left.first() {
                leftovers += 1;
                assert!(name.starts_with(".kc.neardup-create-"), "{left:?}");
                let out = index_output(&["stats"], &parent.join(name), &[]);
                assert!(!out.status.success());
                assert!(stderr_of(&out).contains("delete it"), "{}", stderr_of(&out));
            }
            let again = ["create", "-q", "--level", "story", "--stats"];
            let mut args: Vec<&str> = again.to_vec();
            args.push(stats.to_str().unwrap());
            index_ok(&args, &idx, &[]);
            assert_eq!(
                std::fs::read_dir(&parent).unwrap().count(),
                1,
                "round {round}"
            );
            assert_eq!(index_stats(&idx)["articles"], 0);
        }
    }
    assert!(
        interrupted > 0 && leftovers > 0,
        "{interrupted} {leftovers}"
    );
}

/// A directory that is not empty and has no `index.meta` is refused by `create` and by
/// every other command, each saying to delete it or choose another; one that holds an
/// index is refused by `create` as one.
#[test]
fn a_directory_without_index_meta_is_refused_saying_what_to_do() {
    let s = Scratch::new();
    // What a create killed part way left in place (this release, in a mount point, or an
    // older one anywhere) is cleared by the next create.
    let half = s.path("half");
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join("story.stats"), b"left by an older neardup").unwrap();
    index_ok(&["create", "-q"], &half, &[]);
    index_ok(&["stats"], &half, &[]);
    // Anything else makes it a directory that is not an index.
    let idx = s.path("other");
    std::fs::create_dir(&idx).unwrap();
    std::fs::write(idx.join("story.stats"), b"left by an older neardup").unwrap();
    std::fs::write(idx.join("notes.txt"), b"someone's").unwrap();
    let out = index_output(&["create", "-q"], &idx, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("is not a neardup index (it has no index.meta)")
            && stderr_of(&out).contains("delete this one or choose another"),
        "{}",
        stderr_of(&out)
    );
    let out = index_output(&["stats"], &idx, &[]);
    assert!(
        stderr_of(&out)
            .contains("give the directory of an index (the index comes before the inputs)"),
        "{}",
        stderr_of(&out)
    );
    let whole = s.path("whole");
    index_ok(&["create", "-q"], &whole, &[]);
    let out = index_output(&["create", "-q"], &whole, &[]);
    assert!(
        stderr_of(&out).contains("already holds a neardup index"),
        "{}",
        stderr_of(&out)
    );
    // An empty directory is replaced by the index, its permissions kept.
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o750)).unwrap();
        index_ok(&["create", "-q"], &empty, &[]);
        let mode = std::fs::metadata(&empty).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o750);
    }
}

/// Repair killed at random moments leaves the damaged or the repaired generation in
/// force, never a mix, and never loses the damaged bytes; running it again finishes it.
#[test]
fn repair_survives_sigkill() {
    let s = Scratch::new();
    let records = corpus(79, 1500, 1_600_000_000);
    let input = s.write("corpus.jsonl", to_jsonl(&records));
    let built = s.path("built");
    index_ok(&["create", "-q"], &built, &[]);
    index_ok(&["add", "-q"], &built, &[&input]);
    let mut bad = std::fs::read(built.join("articles.0.log")).unwrap();
    let (offset, len) = frames_of(&bad)[700];
    bad[(offset + len / 2) as usize] ^= 0xFF;
    std::fs::write(built.join("articles.0.log"), &bad).unwrap();
    // One repair to the end: what every killed one must come to, and how long it takes.
    let done = s.path("done");
    copy_index(&built, &done);
    let started = Instant::now();
    index_ok(&["repair", "-q"], &done, &[]);
    let took = started.elapsed().as_millis() as u64;
    let expected = exported(&done);
    assert_eq!(expected.len(), 1499);
    let mut rng = Rng(12);
    for round in 0..crash_rounds().div_ceil(2) {
        let idx = s.path(&format!("idx-{round}"));
        copy_index(&built, &idx);
        let delay = Duration::from_millis(rng.below(took + 20));
        let repair = ["index", "repair"].map(std::ffi::OsStr::new);
        run_and_kill(&[&repair[..], &[idx.as_os_str()]].concat(), None, delay);
        let out = index_output(&["stats"], &idx, &[]);
        if out.status.success() {
            assert_eq!(lines_of(&out)[0]["articles"], 1499, "round {round}");
        } else {
            assert!(
                stderr_of(&out).contains("is damaged at byte"),
                "round {round}"
            );
            assert_eq!(std::fs::read(idx.join("articles.0.log")).unwrap(), bad);
        }
        index_ok(&["repair", "-q"], &idx, &[]);
        assert_eq!(exported(&idx), expected, "round {round}");
        assert_eq!(
            damaged_files(&idx),
            ["articles.0.log.damaged"],
            "round {round}"
        );
        assert_eq!(
            std::fs::read(idx.join("articles.0.log.damaged")).unwrap(),
            bad
        );
        index_ok(&["add", "-q"], &idx, &[&input]);
        assert_eq!(index_stats(&idx)["articles"], 1500, "round {round}");
    }
}

// ---------------------------------------------------------------------------------------
// The story level.

/// `n` articles as [`corpus`] makes them, except that about a third of the derived ones
/// are retold: chunks of three words shuffled (little shared text) and 0–50 % of the words
/// replaced, so that same-story pairs without near-copy text spread around the model's
/// threshold.
fn story_corpus(seed: u64, n: usize, start: i64) -> Vec<serde_json::Value> {
    generated_corpus(seed, n, start, 2, |rng, source| {
        let retold = rng.below(3) > 0;
        let rate = if retold {
            rng.below(500)
        } else {
            rng.below(300)
        };
        let mut words = with_words_replaced(rng, source, rate);
        if retold {
            let mut chunks: Vec<Vec<u64>> = words.chunks(3).map(<[u64]>::to_vec).collect();
            for j in (1..chunks.len()).rev() {
                chunks.swap(j, rng.below(j as u64 + 1) as usize);
            }
            words = chunks.concat();
        }
        words
    })
}

type StoryPairs = BTreeMap<(String, String), (f32, &'static str)>;

/// The batch story level's same-story pairs (probability and kind) within `window`
/// seconds, its statistics written to `stats`.
fn batch_story_pairs(path: &Path, stats: &Path, window: u64) -> StoryPairs {
    let outcome = PipelineBuilder::new()
        .level(neardup::Level::Story)
        .story(neardup::story::StorySettings {
            window: Some(window as i64),
            ..Default::default()
        })
        .build()
        .unwrap()
        .run(&[InputSpec::Path(path.to_path_buf())], &Silent)
        .unwrap();
    let found = outcome.story.as_ref().unwrap();
    let mut saved = Vec::new();
    found.stats.write_to(&mut saved).unwrap();
    std::fs::write(stats, saved).unwrap();
    found
        .pairs
        .iter()
        .map(|p| {
            let key = ordered(outcome.corpus.id(p.a), outcome.corpus.id(p.b));
            (key, (p.probability, p.kind.name()))
        })
        .collect()
}

fn story_settings(window: Option<u64>) -> IndexSettings {
    let pipeline = PipelineBuilder::new().build().unwrap();
    IndexSettings::new(pipeline.settings(), Level::Story, window).unwrap()
}

fn read_stats(path: &Path) -> neardup::story::StoryStats {
    neardup::story::StoryStats::read_from(&mut std::fs::File::open(path).unwrap()).unwrap()
}

/// What adding the JSON lines of `path` one by one to a story-level index with a window of
/// `window` seconds finds: every same-story pair (from each article's `story_matches`),
/// and every verdict. The index is reopened at a third and two thirds of the way. (The
/// feed's window looks back from each article: with articles added in date order, as
/// here, it keeps the pairs the batch window keeps.)
fn feed_story_pairs(
    path: &Path,
    dir: &Path,
    stats: Option<&neardup::story::StoryStats>,
    window: u64,
) -> (StoryPairs, Vec<neardup::feed::Verdict>) {
    FeedIndex::create_with_stats(dir, &story_settings(Some(window)), stats).unwrap();
    let lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (mut pairs, mut verdicts) = (BTreeMap::new(), Vec::new());
    let third = lines.len() / 3;
    for part in [
        &lines[..third],
        &lines[third..2 * third],
        &lines[2 * third..],
    ] {
        let mut index = FeedIndex::open(dir, Access::Write, &Silent).unwrap();
        let mut fingerprinter = index.fingerprinter();
        for (i, line) in part.iter().enumerate() {
            let Ok(article) =
                Article::from_json(line, &FieldNames::default(), &mut fingerprinter, 0)
            else {
                continue;
            };
            let verdict = index.add(&article).unwrap().expect("ids are unique");
            for m in &verdict.story_matches {
                pairs.insert(
                    ordered(&article.id, &m.id),
                    (m.score, m.kind.expect("a story match has a kind").name()),
                );
            }
            verdicts.push(verdict);
            if i % 97 == 0 {
                index.commit().unwrap();
            }
        }
        index.commit().unwrap();
    }
    (pairs, verdicts)
}

/// Checks that the feed found the batch's pairs with the same scores and kinds.
fn assert_same_story_pairs(feed: &StoryPairs, batch: &StoryPairs, what: &str) {
    let missing: Vec<_> = batch.keys().filter(|k| !feed.contains_key(*k)).collect();
    let extra: Vec<_> = feed.keys().filter(|k| !batch.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}"
    );
    for (key, (p, kind)) in feed {
        let (q, batch_kind) = batch[key];
        assert!(
            (p - q).abs() < 1e-6 && *kind == batch_kind,
            "{what}: {key:?} scored {p} {kind} by the feed, {q} {batch_kind} by batch"
        );
    }
}

#[test]
fn story_level_added_article_by_article_gives_the_batch_story_pairs() {
    let s = Scratch::new();
    // One article an hour: the window keeps some derived articles from their source.
    let path = s.write("in.jsonl", to_jsonl(&story_corpus(21, 700, 0)));
    let window = 20 * 86_400;
    let stats_path = s.path("corpus.stats");
    let batch = batch_story_pairs(&path, &stats_path, window);
    assert!(batch.len() < batch_story_pairs(&path, &stats_path, u64::MAX / 4).len());
    let stats = read_stats(&stats_path);
    let (feed, verdicts) = feed_story_pairs(&path, &s.path("idx"), Some(&stats), window);
    assert_same_story_pairs(&feed, &batch, "synthetic corpus");
    // Added out of date order, the feed's window (before or after) still keeps what the
    // batch window keeps.
    let mut records = story_corpus(21, 700, 0);
    let mut rng = Rng(5);
    for i in (1..records.len()).rev() {
        records.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let shuffled = s.write("shuffled.jsonl", to_jsonl(&records));
    let (feed, _) = feed_story_pairs(&shuffled, &s.path("idx-shuffled"), Some(&stats), window);
    assert_same_story_pairs(&feed, &batch, "synthetic corpus, shuffled");
    let count = |k: VerdictKind| verdicts.iter().filter(|v| v.kind == k).count();
    let (new, duplicates, rewrites) = (
        count(VerdictKind::New),
        count(VerdictKind::Duplicate),
        count(VerdictKind::Rewrite),
    );
    assert!(
        batch.len() > 50 && rewrites > 20 && duplicates > 20 && new > 200,
        "the corpus exercises every verdict: {} pairs, {new} new, {duplicates} duplicates, {rewrites} rewrites",
        batch.len()
    );
    for v in &verdicts {
        match v.kind {
            // A rewrite's matches are its story matches; its best is a batch pair.
            VerdictKind::Rewrite => {
                assert_eq!(v.matches, v.story_matches);
                let best = v.best().unwrap();
                assert!(batch.contains_key(&ordered(&v.id, &best.id)));
                assert_eq!(
                    best.kind.map(|k| k.name()),
                    Some(batch[&ordered(&v.id, &best.id)].1)
                );
            }
            VerdictKind::Duplicate => assert!(v.matches.iter().all(|m| m.kind.is_none())),
            _ => assert!(v.story_matches.is_empty() && v.matches.is_empty()),
        }
    }
}

/// Undated articles (no date, or one that does not parse) match any in batch; the story
/// index pairs them the same way, in date order or not (before, it matched them at its
/// clock and missed the pairs beyond the window from there).
#[test]
fn story_level_with_undated_articles_gives_the_batch_story_pairs() {
    let s = Scratch::new();
    let mut records = story_corpus(22, 600, 0);
    for (i, r) in records.iter_mut().enumerate() {
        match i % 6 {
            1 => drop(r.as_object_mut().unwrap().remove("date")),
            4 => r["date"] = "not a date".into(),
            _ => {}
        }
    }
    // An undated exact copy of the first article, at the end.
    let mut copy = records[0].clone();
    copy["id"] = "copy-of-doc-00000".into();
    copy.as_object_mut().unwrap().remove("date");
    records.push(copy);
    let path = s.write("in.jsonl", to_jsonl(&records));
    let window = 3 * 86_400;
    let stats_path = s.path("corpus.stats");
    let batch = batch_story_pairs(&path, &stats_path, window);
    assert!(batch.contains_key(&ordered("copy-of-doc-00000", "doc-00000")));
    let stats = read_stats(&stats_path);
    let (feed, verdicts) = feed_story_pairs(&path, &s.path("idx"), Some(&stats), window);
    assert_same_story_pairs(&feed, &batch, "with undated articles");
    let last = verdicts.last().unwrap();
    assert_eq!(
        (last.kind, last.best().map(|m| m.id.as_str())),
        (VerdictKind::Duplicate, Some("doc-00000"))
    );
    let mut rng = Rng(6);
    for i in (1..records.len()).rev() {
        records.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let shuffled = s.write("shuffled.jsonl", to_jsonl(&records));
    let (feed, _) = feed_story_pairs(&shuffled, &s.path("idx-shuffled"), Some(&stats), window);
    assert_same_story_pairs(&feed, &batch, "with undated articles, shuffled");
}

/// `index add --all-matches` on a story index lists the batch story level's same-story
/// pairs: a rewrite's `matches`, and a duplicate's `story_matches` (its `matches` are its
/// near-copies; before, its same-story matches were left out).
#[test]
fn all_matches_of_a_story_index_list_the_batch_story_pairs() {
    let s = Scratch::new();
    let path = s.write("in.jsonl", to_jsonl(&story_corpus(23, 400, 0)));
    let window = 20 * 86_400;
    let stats = s.path("corpus.stats");
    let batch = batch_story_pairs(&path, &stats, window);
    let idx = s.path("idx");
    let flags = [
        "create", "-q", "--level", "story", "--window", "20d", "--stats",
    ];
    let mut flags = flags.map(String::from).to_vec();
    flags.push(stats.to_str().unwrap().to_string());
    index_ok(
        &flags.iter().map(String::as_str).collect::<Vec<_>>(),
        &idx,
        &[],
    );
    let out = index_output(&["add", "-q", "--all-matches"], &idx, &[&path]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mut listed = BTreeMap::new();
    let mut duplicates_with_stories = 0;
    for v in lines_of(&out) {
        let story = match v["verdict"].as_str().unwrap() {
            "rewrite" => &v["matches"],
            "duplicate" if v.get("story_matches").is_some() => {
                duplicates_with_stories += 1;
                &v["story_matches"]
            }
            _ => continue,
        };
        for m in story.as_array().unwrap() {
            let key = ordered(v["id"].as_str().unwrap(), m["id"].as_str().unwrap());
            listed.insert(key, m["kind"].as_str().unwrap().to_string());
        }
    }
    assert!(duplicates_with_stories > 10, "{duplicates_with_stories}");
    let batch: BTreeMap<_, _> = batch
        .into_iter()
        .map(|(k, (_, kind))| (k, kind.to_string()))
        .collect();
    assert_eq!(listed, batch);
}

/// Adds a real corpus article by article to a story index with the default window and the
/// batch run's statistics, checks that it finds exactly the batch's same-story pairs, and
/// returns how many there are and the feed's verdicts.
fn real_corpus_feed_matches_batch(file: &str) -> Option<(usize, Vec<neardup::feed::Verdict>)> {
    let path = data_dir()?.join(file);
    let s = Scratch::new();
    let stats_path = s.path("corpus.stats");
    let window = neardup::story::DEFAULT_WINDOW as u64;
    let batch = batch_story_pairs(&path, &stats_path, window);
    let stats = read_stats(&stats_path);
    let (feed, verdicts) = feed_story_pairs(&path, &s.path("idx"), Some(&stats), window);
    assert_same_story_pairs(&feed, &batch, file);
    Some((batch.len(), verdicts))
}

#[test]
fn bbc_story_level_added_article_by_article_gives_the_batch_story_pairs() {
    // Undated: the window does not apply.
    let Some((pairs, verdicts)) = real_corpus_feed_matches_batch("bbc-news.jsonl") else {
        return;
    };
    assert!(pairs > 100);
    assert!(verdicts.iter().any(|v| v.kind == VerdictKind::Rewrite));
}

/// Reuters is dated: with the default window on both sides, the feed finds exactly the
/// batch's same-story pairs on real wire copy (the synthetic test above covers articles
/// added far out of date order).
#[test]
fn reuters_story_level_added_article_by_article_gives_the_batch_story_pairs() {
    let Some((pairs, _)) = real_corpus_feed_matches_batch("reuters21578.jsonl") else {
        return;
    };
    assert!(pairs > 1000);
}

/// Without a statistics file, each article is scored against the statistics of the
/// articles before it, rebuilt from the log at opening: the verdicts do not depend on when
/// the index was reopened, and a query after reopening answers as before.
#[test]
fn story_level_accumulated_statistics_are_reproducible_after_reopening() {
    let s = Scratch::new();
    let path = s.write("in.jsonl", to_jsonl(&story_corpus(23, 500, 0)));
    // Reopened twice on the way, against one index built in one go.
    let window = neardup::story::DEFAULT_WINDOW as u64;
    let (pairs, verdicts) = feed_story_pairs(&path, &s.path("idx"), None, window);
    let dir = s.path("one-go");
    FeedIndex::create(&dir, &story_settings(Some(window))).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let mut f = index.fingerprinter();
    let articles: Vec<Article> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| Article::from_json(l, &FieldNames::default(), &mut f, 0).unwrap())
        .collect();
    let (last, rest) = articles.split_last().unwrap();
    for (a, v) in rest.iter().zip(&verdicts) {
        assert_eq!(&index.add(a).unwrap().unwrap(), v);
    }
    assert!(verdicts.iter().any(|v| v.kind == VerdictKind::Rewrite));
    assert!(pairs.len() > 20);
    // A query now and after reopening: the same verdict, from the same statistics.
    let before = index.query(last).unwrap().unwrap();
    index.commit().unwrap();
    drop(index);
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    assert_eq!(index.query(last).unwrap().unwrap(), before);
    assert_eq!(index.stats().story_documents, Some(rest.len() as u64));
    let added = index.add(last).unwrap().unwrap();
    assert_eq!(added, before);
    assert_eq!(&added, verdicts.last().unwrap());
}

#[test]
fn story_level_commands_end_to_end() {
    let s = Scratch::new();
    let records = story_corpus(24, 400, 1_700_000_000);
    let archive = s.write("archive.jsonl", to_jsonl(&records[..300]));
    let today = s.write("today.jsonl", to_jsonl(&records[300..]));
    let stats = s.path("archive.stats");
    neardup()
        .args(["cluster", "--level", "story", "-q", "--stats-out"])
        .arg(&stats)
        .arg(&archive)
        .assert()
        .success();
    let idx = s.path("idx");
    // Statistics need the story level; the story level needs word shingles.
    let out = neardup()
        .args(["index", "create", "-q", "--stats"])
        .arg(&stats)
        .arg(s.path("bad"))
        .output()
        .unwrap();
    assert!(!out.status.success() && stderr_of(&out).contains("--level story"));
    let out = neardup()
        .args([
            "index",
            "create",
            "-q",
            "--level",
            "story",
            "--shingle",
            "chars:7",
        ])
        .arg(s.path("bad2"))
        .output()
        .unwrap();
    assert!(!out.status.success() && stderr_of(&out).contains("word shingles"));
    index_ok(
        &["create", "-q", "--level", "story", "--stats"],
        &stats,
        &[&idx],
    );
    assert!(idx.join("story.stats").is_file());
    let out = index_output(&["add", "-q"], &idx, &[&archive]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let added = lines_of(&out);
    assert_eq!(added.len(), 300);
    let rewrite = added
        .iter()
        .find(|v| v["verdict"] == "rewrite")
        .expect("the archive has rewrites");
    assert!(["copy", "update", "rewrite"].contains(&rewrite["kind"].as_str().unwrap()));
    assert!(rewrite["score"].as_f64().unwrap() >= neardup::story::Model::fitted().threshold - 1e-4);
    assert!(
        added
            .iter()
            .filter(|v| v["verdict"] != "rewrite")
            .all(|v| v.get("kind").is_none())
    );
    // watch answers the rest, one line per input line.
    let out = neardup()
        .args(["watch", "--all-matches"])
        .arg(&idx)
        .write_stdin(std::fs::read(&today).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let watched = lines_of(&out);
    assert_eq!(watched.len(), 100);
    assert!(stderr_of(&out).contains("rewrites"), "{}", stderr_of(&out));
    for v in watched.iter().filter(|v| v["verdict"] == "rewrite") {
        let matches = v["matches"].as_array().unwrap();
        assert_eq!(matches[0]["id"], v["match"]);
        assert_eq!(matches[0]["kind"], v["kind"]);
    }
    // Queries after the fact give the stored verdicts.
    let out = index_output(&["query", "-q"], &idx, &[&today]);
    for (mut q, w) in lines_of(&out).into_iter().zip(&watched) {
        assert_eq!(q["indexed"], true);
        q.as_object_mut().unwrap().remove("indexed");
        let mut w = w.clone();
        w.as_object_mut().unwrap().remove("matches");
        assert_eq!(q, w);
    }
    let out = index_output(&["stats"], &idx, &[]);
    let st = &lines_of(&out)[0];
    assert_eq!(st["level"], "story");
    assert_eq!(st["story"]["statistics"], "fixed");
    assert_eq!(st["story"]["documents"], 300);
    // The batch story level's window unless told otherwise; a copy index has none.
    assert_eq!(st["window_seconds"], neardup::story::DEFAULT_WINDOW);
    let table = stdout_of(&index_output(&["stats", "--format", "table"], &idx, &[]));
    assert!(
        table
            .lines()
            .any(|l| l.contains("window") && l.contains("72h")),
        "{table}"
    );
    for (args, window) in [
        (&["--level", "story", "--window", "none"][..], None),
        (
            &["--level", "story", "--window", "36h"][..],
            Some(36 * 3600),
        ),
        (&[][..], None),
    ] {
        let dir = s.path(&format!("idx-{}", args.join("")));
        let out = neardup()
            .args(["index", "create"])
            .args(args)
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let shown = window.map_or("no window".to_string(), |w: i64| {
            format!("window {}h", w / 3600)
        });
        assert!(stderr_of(&out).contains(&shown), "{}", stderr_of(&out));
        let st = &lines_of(&index_output(&["stats"], &dir, &[]))[0];
        assert_eq!(st["window_seconds"], serde_json::json!(window));
    }
    assert_eq!(
        st["rewrites"].as_u64().unwrap(),
        added
            .iter()
            .chain(&watched)
            .filter(|v| v["verdict"] == "rewrite")
            .count() as u64
    );
    // A changed statistics file is refused.
    let mut bytes = std::fs::read(idx.join("story.stats")).unwrap();
    let at = bytes.len() - 1;
    bytes[at] ^= 1;
    std::fs::write(idx.join("story.stats"), bytes).unwrap();
    let out = index_output(&["stats"], &idx, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("story.stats"),
        "{}",
        stderr_of(&out)
    );
    // --help teaches the level.
    let help = neardup()
        .args(["index", "create", "--help"])
        .output()
        .unwrap();
    assert!(stdout_of(&help).contains("rewrite") && stdout_of(&help).contains("--stats"));
    let help = neardup().args(["watch", "--help"]).output().unwrap();
    assert!(stdout_of(&help).contains("rewrite"));
}

#[test]
fn story_threshold_and_candidates_are_index_settings() {
    let s = Scratch::new();
    let records = story_corpus(24, 300, 1_700_000_000);
    let archive = s.write("archive.jsonl", to_jsonl(&records));
    let rewrites = |extra: &[&str]| -> (Vec<serde_json::Value>, serde_json::Value) {
        let idx = s.path(&format!("idx{}", extra.join("")));
        neardup()
            .args(["index", "create", "-q", "--level", "story"])
            .args(extra)
            .arg(&idx)
            .assert()
            .success();
        let out = index_output(&["add", "-q"], &idx, &[&archive]);
        assert!(out.status.success(), "{}", stderr_of(&out));
        let verdicts = lines_of(&out)
            .into_iter()
            .filter(|v| v["verdict"] == "rewrite")
            .collect();
        let stats = index_output(&["stats"], &idx, &[]);
        (verdicts, lines_of(&stats)[0]["story"].clone())
    };
    let (default, default_stats) = rewrites(&[]);
    let (strict, strict_stats) = rewrites(&["--story-threshold", "0.99"]);
    assert!(!default.is_empty());
    assert!(
        strict.len() < default.len(),
        "{} vs {}",
        strict.len(),
        default.len()
    );
    assert!(strict.iter().all(|v| v["score"].as_f64().unwrap() >= 0.99));
    assert_eq!(strict_stats["threshold"], 0.99);
    assert_eq!(
        default_stats["threshold"],
        neardup::story::Model::fitted().threshold
    );
    let (_, wide_stats) = rewrites(&["--story-candidates", "0.1"]);
    assert_eq!(wide_stats["candidate_threshold"], 0.1);
    assert_ne!(wide_stats["bands"], default_stats["bands"]);
    // Story settings need the story level, and sensible values.
    for bad in [
        vec!["--story-threshold", "0.5"],
        vec!["--level", "story", "--story-threshold", "1.5"],
        vec!["--level", "story", "--story-candidates", "0"],
    ] {
        let out = neardup()
            .args(["index", "create", "-q"])
            .args(&bad)
            .arg(s.path("bad"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        assert!(stderr_of(&out).contains("--story-"), "{}", stderr_of(&out));
    }
}

// ---------------------------------------------------------------------------------------
// `neardup serve`: the index behind HTTP.

/// A running `neardup serve` on a free port; stopped with SIGTERM by [`Served::stop`].
struct Served {
    child: std::process::Child,
    address: String,
    stderr: std::thread::JoinHandle<String>,
}

impl Served {
    fn start(idx: &Path, flags: &[&str]) -> Served {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin("neardup"));
        command
            .arg("serve")
            .arg(idx)
            .args(["--listen", "127.0.0.1:0"])
            .args(flags);
        Served::spawn(command)
    }

    /// `command` runs `neardup serve --listen 127.0.0.1:0` (through `sh`, say).
    fn spawn(mut command: Command) -> Served {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
        let address = first
            .split("listening on ")
            .nth(1)
            .and_then(|url| url.split_once("://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .1
            .trim()
            .to_string();
        let stderr = std::thread::spawn(move || {
            let mut rest = first;
            stderr.read_to_string(&mut rest).unwrap();
            rest
        });
        Served {
            child,
            address,
            stderr,
        }
    }

    /// One request; the status and the body.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        try_request(&self.address, method, path, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    fn post(&self, body: &str) -> Vec<serde_json::Value> {
        let (status, answer) = self.request("POST", "/articles", body.as_bytes());
        assert_eq!(status, 200, "{answer}");
        json_lines(&answer)
    }

    /// SIGTERM; the exit status and everything serve printed on standard error.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        send_signal(self.child.id(), "TERM");
        let status = self.child.wait().unwrap();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status, stderr.join().unwrap())
    }
}

/// One request to the server at `address`; `None` when it does not answer whole (it
/// was killed, say).
fn try_request(address: &str, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    try_exchange(address, method, path, body).map(|(status, _, body)| (status, body))
}

/// One request; the status, the head (lower-cased) and the body.
fn try_exchange(
    address: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<(u16, String, String)> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: neardup\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .ok()?;
    stream.write_all(body).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let answer = String::from_utf8(answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_ascii_lowercase(), body.to_string()))
}

impl Drop for Served {
    /// A test that fails midway leaves no server behind (it would hold the test's
    /// standard output open, and the run with it).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn serve_goes_on_answering_after_clients_give_up_mid_request() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &["--threads", "1"]);
    // Bodies that take a while to fingerprint, sent whole by clients that then hang up
    // before the answer: each once took the only fingerprinter with it.
    let big = to_jsonl(&corpus(5, 4000, 1_700_000_000));
    for _ in 0..3 {
        let mut stream = connect(
            &server.address,
            format!(
                "POST /query HTTP/1.1\r\nHost: neardup\r\nContent-Length: {}\r\n\r\n",
                big.len()
            )
            .as_bytes(),
        );
        stream.write_all(big.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(stream);
    }
    let verdicts = server.post(&to_jsonl(&corpus(6, 3, 1_700_000_000)));
    assert_eq!(verdicts.len(), 3);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
}

#[test]
fn serve_answers_a_client_that_half_closes_after_its_request() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &[]);
    let body = to_jsonl(&corpus(7, 2, 1_700_000_000));
    let mut stream = connect(
        &server.address,
        format!(
            "POST /articles HTTP/1.1\r\nHost: neardup\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (status, answer) = answer_of(&mut stream);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer).len(), 2, "{answer}");
    // Sent again: counted as already indexed, not as new.
    assert_eq!(server.post(&body).len(), 2);
    let (_, stats) = server.request("GET", "/stats", b"");
    let articles = &json_lines(&stats)[0]["articles"];
    assert_eq!(
        (
            articles["new"].as_u64(),
            articles["already_indexed"].as_u64()
        ),
        (Some(2), Some(2)),
        "{stats}"
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("serve: 4 articles (2 new, 0 duplicates, 2 already indexed)"),
        "{err}"
    );
}

#[test]
fn feed_help_and_messages_say_what_is_so() {
    let help = |args: &[&str]| stdout_of(&neardup().args(args).output().unwrap());
    let query = help(&["index", "query", "--help"]);
    assert!(
        query.contains("a query stores and syncs nothing"),
        "{query}"
    );
    assert!(!query.contains("--representative"), "{query}");
    let index = help(&["index", "--help"]);
    assert!(
        index.contains("(add, remove, compact, repair, watch, serve)"),
        "{index}"
    );
    // repair says what it keeps, what it leaves out and where the damaged log goes.
    let repair = help(&["index", "repair", "--help"]);
    let repair = repair.split_whitespace().collect::<Vec<_>>().join(" ");
    for said in [
        "Every intact article is kept",
        "left out and reported by offset",
        "articles.<generation>.log.damaged",
        "--discard-damaged",
        "nothing to repair",
    ] {
        assert!(repair.contains(said), "{said}: {repair}");
    }
    assert!(!index.contains("(see\n'--durability')"), "{index}");
    let out = neardup()
        .args(["watch", "idx", "--compact-every", "0s"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(
        err.contains("the time between compactions must be longer than 0"),
        "{err}"
    );
    // serve: an id asked for twice is named once; /health is one JSON object.
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &[]);
    server.post(&to_jsonl(&[serde_json::json!({"id": "a", "text": RATE})]));
    let (status, _) = server.request("POST", "/remove", b"a\na\n");
    assert_eq!(status, 200);
    let mut stream = connect(
        &server.address,
        b"HEAD /health HTTP/1.1\r\nHost: n\r\nConnection: close\r\n\r\n",
    );
    let mut head = String::new();
    stream.read_to_string(&mut head).unwrap();
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json\r\n"),
        "{head}"
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("serve: removed 1 article: a\n"), "{err}");
}

#[test]
fn serve_answers_as_index_add_does() {
    let s = Scratch::new();
    let articles = to_jsonl(&corpus(11, 600, 1_700_000_000));
    let input = s.write("feed.jsonl", &articles);
    for level in ["copy", "story"] {
        let (added, served) = (
            s.path(&format!("added-{level}")),
            s.path(&format!("served-{level}")),
        );
        index_ok(&["create", "-q", "--level", level], &added, &[]);
        // The batch commands' name of the copy level is taken too.
        let alias = if level == "copy" { "near-copy" } else { level };
        index_ok(&["create", "-q", "--level", alias], &served, &[]);
        let expected = stdout_of(&index_output(&["add", "-q"], &added, &[&input]));
        let server = Served::start(&served, &[]);
        // Requests of 50 articles, one after another: the verdicts of one `index add`.
        let lines: Vec<&str> = articles.lines().collect();
        let mut answered = String::new();
        for chunk in lines.chunks(50) {
            let (status, body) =
                server.request("POST", "/articles", (chunk.join("\n") + "\n").as_bytes());
            assert_eq!(status, 200, "{body}");
            answered.push_str(&body);
        }
        assert_eq!(answered, expected, "{level}");
        let verdicts = json_lines(&expected);
        assert!(
            verdicts.iter().any(|v| v["verdict"] == "duplicate"),
            "{level}"
        );
        if level == "story" {
            assert!(verdicts.iter().any(|v| v["verdict"] == "rewrite"));
        }
        // Queries: articles already indexed, new ones (some rewrites of indexed ones, some
        // repeated within the body) and an id indexed with other text; nothing is stored.
        let mut queried: Vec<serde_json::Value> = corpus(11, 620, 1_700_000_000)[580..].to_vec();
        queried.extend(corpus(12, 20, 1_700_000_000).into_iter().map(|mut record| {
            record["id"] = format!("other-{}", record["id"].as_str().unwrap()).into();
            record
        }));
        let mut copy = queried[3].clone();
        copy["id"] = "copy".into();
        queried.push(copy);
        queried.push(serde_json::json!({"id": queried[0]["id"], "text": RATE}));
        let queries = to_jsonl(&queried);
        let (status, checked) = server.request("POST", "/query", queries.as_bytes());
        assert_eq!(status, 200, "{checked}");
        let (status, health) = server.request("GET", "/health", b"");
        assert_eq!(status, 200);
        assert_eq!(json_lines(&health)[0]["articles"], 600);
        let (status, err) = server.stop();
        assert!(status.success(), "{err}");
        assert!(
            err.contains("serve: 600 articles") && err.contains("61 checked without storing"),
            "{err}"
        );
        // Stored: the index exports what `index add` stored.
        let export = |idx: &Path| stdout_of(&index_output(&["export"], idx, &[]));
        assert_eq!(export(&served), export(&added));
        // And the queries were answered as `index query` answers them (which reports the
        // taken id on standard error, where serve answers it as rejected).
        let query_file = s.write(&format!("queries-{level}.jsonl"), &queries);
        let expected = stdout_of(&index_output(&["query", "-q"], &served, &[&query_file]));
        let (answered, taken) = checked.split_at(checked.trim_end().rfind('\n').unwrap() + 1);
        assert_eq!(answered, expected, "{level}");
        assert!(taken.contains("\"line\":62"), "{taken}");
        let verdicts = json_lines(&checked);
        assert_eq!(verdicts[60]["verdict"], "duplicate", "{level}");
        assert!(verdicts[..20].iter().all(|v| v["indexed"] == true));
        assert!(verdicts[20..61].iter().all(|v| v["indexed"] == false));
        assert_eq!(verdicts[61]["verdict"], "rejected");
    }
}

/// `watch` and `serve` said nothing of a date they could not use (QA pass 11), so a feed
/// could run with its window off in effect; now every verdict says so, the first is
/// warned of at once, and the summaries and `/stats` count them, as `index add` does.
#[test]
fn every_feed_command_says_which_dates_it_does_not_use() {
    let s = Scratch::new();
    let input = [
        serde_json::json!({"id": "a", "text": RATE, "date": "2025-08-18T10:00:00+0000"}),
        serde_json::json!({"id": "b", "text": STORM, "date": "next tuesday"}),
        serde_json::json!({"id": "c", "text": RATE_COPY, "date": "2087-03-01T00:00:00Z"}),
        serde_json::json!({"id": "d", "text": STORM_COPY, "date": "yesterday"}),
        // Another JSON type: not the absence of a date (QA pass 12).
        serde_json::json!({"id": "e", "text": "eight nine ten eleven twelve", "date": true}),
    ]
    .map(|r| r.to_string() + "\n")
    .concat();
    let ignored = |answers: &[serde_json::Value]| -> Vec<String> {
        answers
            .iter()
            .map(|a| a["date_ignored"].to_string())
            .collect()
    };
    let expected = [
        "null",
        r#"{"reason":"unparsable","value":"next tuesday"}"#,
        r#"{"reason":"in_the_future","value":"2087-03-01T00:00:00Z"}"#,
        r#"{"reason":"unparsable","value":"yesterday"}"#,
        r#"{"reason":"unparsable","value":"true"}"#,
    ];
    let note = "4 date fields were not used (e.g. \"next tuesday\" is not a date neardup reads)";
    let file = s.write("feed.jsonl", &input);
    let idx = s.path("added");
    index_ok(&["create", "-q", "--window", "3d"], &idx, &[]);
    let out = index_output(&["add"], &idx, &[&file]);
    assert_eq!(ignored(&lines_of(&out)), expected);
    assert!(stderr_of(&out).contains(note), "{}", stderr_of(&out));
    let stored = "are stored at the index's clock for compaction";
    assert!(stderr_of(&out).contains(stored), "{}", stderr_of(&out));
    // A query stores nothing, and its note does not say it does.
    let out = index_output(&["query"], &idx, &[&file]);
    assert!(stderr_of(&out).contains(note), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains(stored), "{}", stderr_of(&out));

    let idx = s.path("watched");
    index_ok(&["create", "-q", "--window", "3d"], &idx, &[]);
    let out = neardup()
        .arg("watch")
        .arg(&idx)
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(ignored(&lines_of(&out)), expected);
    let err = stderr_of(&out);
    assert_eq!(err.matches("is not used").count(), 1, "{err}");
    assert!(
        err.contains(r#"<stdin>:2: the date of article "b" is not used"#),
        "{err}"
    );
    assert!(err.contains(note), "{err}");

    let idx = s.path("served");
    index_ok(&["create", "-q", "--window", "3d"], &idx, &[]);
    let server = Served::start(&idx, &[]);
    assert_eq!(ignored(&server.post(&input)), expected);
    let (status, stats) = server.request("GET", "/stats", b"");
    assert_eq!(status, 200);
    assert_eq!(json_lines(&stats)[0]["articles"]["dates_ignored"], 4);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains(note), "{err}");
}

#[test]
fn serve_takes_many_clients_at_once_and_refuses_what_it_cannot_take() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &["--max-body-bytes", "64KiB", "--threads", "3"]);
    // Four clients, 25 requests of 4 articles each, at once: every article answered once.
    let records = corpus(5, 400, 1_700_000_000);
    std::thread::scope(|scope| {
        for client in records.chunks(100) {
            let server = &server;
            scope.spawn(move || {
                for request in client.chunks(4) {
                    let answers = server.post(&to_jsonl(request));
                    let ids: Vec<&str> =
                        answers.iter().map(|a| a["id"].as_str().unwrap()).collect();
                    let sent: Vec<&str> =
                        request.iter().map(|r| r["id"].as_str().unwrap()).collect();
                    assert_eq!(ids, sent, "one answer per article, in order");
                }
            });
        }
    });
    let (_, health) = server.request("GET", "/health", b"");
    assert_eq!(json_lines(&health)[0]["articles"], 400);
    // A load balancer's HEAD check: the status, no body.
    assert_eq!(server.request("HEAD", "/health", b""), (200, String::new()));

    // Bad lines are answered line by line; bad requests get a status and a message.
    let body = format!(
        "{}\n{{not json\n\n{}\n",
        serde_json::json!({"id": "x1", "text": RATE}),
        serde_json::json!({"id": "x2", "text": "  "})
    );
    let answers = server.post(&body);
    let kinds: Vec<&str> = answers
        .iter()
        .map(|a| a["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["new", "rejected", "rejected"]);
    assert_eq!(answers[1]["line"], 2);
    assert_eq!(answers[2]["line"], 4);
    let mut invalid = serde_json::json!({"id": "x3", "text": "caf"})
        .to_string()
        .into_bytes();
    invalid.splice(invalid.len() - 2..invalid.len() - 2, [0xFF]);
    let (status, answer) = server.request("POST", "/articles", &invalid);
    assert_eq!(status, 200);
    assert!(answer.contains("invalid UTF-8"), "{answer}");
    for (method, path, allow) in [
        ("GET", "/articles", "post"),
        ("PUT", "/query", "post"),
        ("DELETE", "/health", "get, head"),
    ] {
        let (status, head, _) = try_exchange(&server.address, method, path, b"").unwrap();
        assert_eq!(status, 405);
        assert!(head.contains(&format!("\r\nallow: {allow}")), "{head}");
    }
    for (method, path, body, expected, message) in [
        ("GET", "/nowhere", &b""[..], 404, "no such endpoint"),
        ("GET", "/articles", b"", 405, "takes POST"),
        ("PUT", "/query", b"", 405, "takes POST"),
        ("DELETE", "/health", b"", 405, "takes GET"),
        ("POST", "/articles", b"\n\n", 400, "no article"),
        (
            "POST",
            "/articles",
            &[b'x'; 70_000][..],
            413,
            "--max-body-bytes",
        ),
    ] {
        let (status, answer) = server.request(method, path, body);
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert!(
            json_lines(&answer)[0]["error"]
                .as_str()
                .unwrap()
                .contains(message),
            "{answer}"
        );
    }
    // What the server has answered, for its operator.
    let (status, stats) = server.request("GET", "/stats", b"");
    assert_eq!(status, 200, "{stats}");
    let stats = &json_lines(&stats)[0];
    assert_eq!(stats["index"]["articles"], 401);
    let articles = &stats["articles"];
    let decided = articles["new"].as_u64().unwrap() + articles["duplicates"].as_u64().unwrap();
    assert_eq!((decided, articles["rejected"].as_u64()), (401, Some(3)));
    let requests = &stats["requests"];
    // 100 posts, 2 with bad lines, 2 health checks, 1 refused as invalid UTF-8 (answered
    // line by line: 200); one each of the refusals above.
    assert_eq!(requests["200"], 104, "{requests}");
    assert_eq!((&requests["404"], &requests["413"]), (&1.into(), &1.into()));
    assert_eq!(requests["405"], 6, "{requests}");
    let times = &stats["answer_ms"];
    assert!(times["median"].as_f64().unwrap() <= times["max"].as_f64().unwrap());
    // One sample a request answered, not one an article: the 100 posts of 4 articles,
    // the one with bad lines and the one answered line by line as invalid UTF-8.
    assert_eq!(times["requests"], 102, "{times}");
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("serve: 401 articles") && err.contains("3 rejected"),
        "{err}"
    );
    // A second server cannot open the index while one writes it; after, it can.
    let stats = &lines_of(&index_output(&["stats"], &idx, &[]))[0];
    assert_eq!(stats["articles"], 401);
}

#[test]
fn served_articles_survive_sigkill() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let mut server = Served::start(&idx, &[]);
    let records = corpus(9, 120, 1_700_000_000);
    let answers = server.post(&to_jsonl(&records));
    assert_eq!(answers.len(), 120);
    // Answered means stored: kill -9 right after the answer.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let exported = lines_of(&index_output(&["export"], &idx, &[]));
    assert_eq!(exported.len(), 120);
    // And another server may open it again.
    let other = Served::start(&idx, &["--durability", "disk"]);
    let answer = other.post(&to_jsonl(&records[..1]));
    assert_eq!(answer[0]["indexed"], true, "{answer:?}");
    let (status, err) = other.stop();
    assert!(status.success(), "{err}");
}

/// A raw connection to a server that sends `head` and then whatever the test says; reads
/// give up after 10 s, so a server that never answers fails the test instead of hanging it.
fn connect(address: &str, head: &[u8]) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head).unwrap();
    stream
}

/// The status and body of the answer on `stream`, read to its end.
fn answer_of(stream: &mut std::net::TcpStream) -> (u16, String) {
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("an answer within 10 s");
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

/// `serve` killed while it compacts in the background, articles arriving all the while:
/// every acknowledged article still inside the window is in the index when it is opened
/// again, nothing is there twice, and the index compacts and takes articles afterwards.
#[test]
fn serve_killed_during_a_background_compaction_loses_no_acknowledged_article() {
    let s = Scratch::new();
    // Dates an hour apart, a 500-day window (12,000 articles): the 15,000 indexed before
    // the server starts have 3,000 to remove, and those posted while it runs expire more.
    let records = corpus(83, 20_000, 1_600_000_000);
    let (indexed, posted) = records.split_at(15_000);
    let template = s.path("template");
    index_ok(
        &["create", "-q", "--level", "story", "--window", "500d"],
        &template,
        &[],
    );
    index_ok(
        &["add", "-q"],
        &template,
        &[&s.write("first.jsonl", to_jsonl(indexed))],
    );
    let date_of = |r: &serde_json::Value| r["date"].as_i64().unwrap();
    let cutoff = date_of(records.last().unwrap()) - 500 * 86_400;
    let mut rng = Rng(29);
    for round in 0..crash_rounds().div_ceil(3) {
        let idx = s.path(&format!("idx-{round}"));
        std::fs::create_dir(&idx).unwrap();
        for file in std::fs::read_dir(&template).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, idx.join(file.file_name().unwrap())).unwrap();
        }
        let mut server = Served::start(&idx, &["--compact-every", "1s", "-q"]);
        let acknowledged = std::thread::scope(|scope| {
            let poster = scope.spawn(|| {
                let mut acknowledged: Vec<serde_json::Value> = Vec::new();
                for chunk in posted.chunks(40) {
                    match try_request(
                        &server.address,
                        "POST",
                        "/articles",
                        to_jsonl(chunk).as_bytes(),
                    ) {
                        // Spread over some 2.5 s: articles arrive while it compacts.
                        Some((200, _)) => {
                            acknowledged.extend_from_slice(chunk);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        _ => break,
                    }
                }
                acknowledged
            });
            // Kill at a random moment of a compaction seen running. (Asked every 5 ms, the
            // server is never idle for its 100 ms: it compacted only when idle until this
            // test.)
            let started = Instant::now();
            loop {
                let (_, stats) = server.request("GET", "/stats", b"");
                let stats = json_lines(&stats).remove(0);
                if stats["compactions"]["running"] == true {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "never compacted: {stats}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(rng.below(250)));
            server.child.kill().unwrap();
            server.child.wait().unwrap();
            poster.join().unwrap()
        });
        let out = index_output(&["export"], &idx, &[]);
        assert!(out.status.success(), "round {round}: {}", stderr_of(&out));
        let held: Vec<String> = lines_of(&out)
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        let distinct: std::collections::HashSet<&str> = held.iter().map(String::as_str).collect();
        assert_eq!(
            distinct.len(),
            held.len(),
            "round {round}: an article held twice"
        );
        for r in indexed.iter().chain(&acknowledged) {
            if date_of(r) >= cutoff {
                let id = r["id"].as_str().unwrap();
                assert!(distinct.contains(id), "round {round}: {id} lost");
            }
        }
        // It goes on: the rest re-sent, compacted, holds exactly the window.
        index_ok(
            &["add", "-q"],
            &idx,
            &[&s.write("posted.jsonl", to_jsonl(posted))],
        );
        index_ok(&["compact", "-q"], &idx, &[]);
        let kept = records.iter().filter(|r| date_of(r) >= cutoff).count();
        assert_eq!(index_stats(&idx)["articles"], kept as u64, "round {round}");
        // The abandoned generation's file is gone too: one log is left.
        let logs = std::fs::read_dir(&idx)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count();
        assert_eq!(logs, 1, "round {round}");
    }
}

#[test]
fn serve_reads_gzip_and_zstd_bodies_and_refuses_bad_or_huge_ones() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &["--max-body-bytes", "64KiB"]);
    let send = |path: &str, encoding: &str, body: &[u8]| {
        let mut stream = connect(
            &server.address,
            format!(
                "POST {path} HTTP/1.1\r\nHost: neardup\r\nContent-Encoding: {encoding}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        stream.write_all(body).unwrap();
        answer_of(&mut stream)
    };
    let records = to_jsonl(&corpus(5, 30, 1_700_000_000));
    let (status, answer) = send("/articles", "gzip", &gzip(records.as_bytes()));
    assert_eq!(status, 200, "{answer}");
    let verdicts = json_lines(&answer);
    assert_eq!(verdicts.len(), 30);
    // The same articles, zstd-compressed, are already indexed; so is a plain copy.
    let zstd = zstd::encode_all(records.as_bytes(), 3).unwrap();
    let (status, answer) = send("/query", "zstd", &zstd);
    assert_eq!(status, 200, "{answer}");
    assert!(
        json_lines(&answer).iter().all(|v| v["indexed"] == true),
        "{answer}"
    );
    let (status, answer) = send("/query", "identity", records.as_bytes());
    assert_eq!((status, json_lines(&answer).len()), (200, 30), "{answer}");

    // Refused whole, each with its reason: a truncated stream, plain text said to be
    // gzip, a body that decompresses past --max-body-bytes, an encoding not understood.
    let fresh = to_jsonl(&corpus(6, 30, 1_800_000_000));
    let gzipped = gzip(fresh.as_bytes());
    let bomb = gzip(&vec![b' '; 1 << 20]);
    for (encoding, body, status, says) in [
        ("gzip", &gzipped[..gzipped.len() / 2], 400, "not valid gzip"),
        (
            "zstd",
            &zstd::encode_all(fresh.as_bytes(), 3).unwrap()[..40],
            400,
            "not valid zstd",
        ),
        ("gzip", fresh.as_bytes(), 400, "not valid gzip"),
        (
            "gzip",
            &bomb[..],
            413,
            "decompresses to more than --max-body-bytes",
        ),
        (
            "br",
            fresh.as_bytes(),
            415,
            "Encoding \\\"br\\\" is not understood",
        ),
        ("gzip, gzip", &gzip(&gzipped)[..], 415, "not understood"),
    ] {
        let (got, answer) = send("/articles", encoding, body);
        assert_eq!(got, status, "{encoding}: {answer}");
        assert!(
            answer.contains(says) && answer.contains("nothing of this request was stored"),
            "{encoding}: {answer}"
        );
    }
    assert!(bomb.len() < 64 << 10, "the bomb fits under the wire limit");
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert_eq!(index_stats(&idx)["articles"], 30);
}

/// Answers are compressed as the request's Accept-Encoding allows (zstd first, then gzip;
/// q=0 refuses one), and decompress to the plain answer; short ones go out plain.
#[test]
fn serve_compresses_answers_when_asked() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &[]);
    let records = to_jsonl(&corpus(8, 200, 1_700_000_000));
    assert_eq!(server.post(&records).len(), 200);
    // The head's lines (lower-cased) and the raw body of a /query with these headers.
    let query = |path: &str, headers: &str, body: &[u8]| {
        let method = if path == "/query" { "POST" } else { "GET" };
        let mut stream = connect(
            &server.address,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: neardup\r\n{headers}Content-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        stream.write_all(body).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(answer[..end].to_vec()).unwrap();
        (head.to_ascii_lowercase(), answer[end + 4..].to_vec())
    };
    let (head, plain) = query("/query", "", records.as_bytes());
    assert!(
        head.starts_with("http/1.1 200") && !head.contains("content-encoding"),
        "{head}"
    );
    assert_eq!(json_lines(std::str::from_utf8(&plain).unwrap()).len(), 200);
    for (accept, encoding) in [
        ("gzip", Some("gzip")),
        ("deflate, gzip;q=0.8, br", Some("gzip")),
        ("gzip, zstd", Some("zstd")),
        ("zstd;q=0, gzip", Some("gzip")),
        ("*", Some("gzip")),
        ("gzip;q=0, zstd;q=0", None),
        ("gzip;q=0, *", None),
        ("br, deflate", None),
    ] {
        let (head, body) = query(
            "/query",
            &format!("Accept-Encoding: {accept}\r\n"),
            records.as_bytes(),
        );
        assert!(head.contains("vary: accept-encoding"), "{accept}: {head}");
        let decoded = match encoding {
            Some("gzip") => {
                assert!(head.contains("content-encoding: gzip"), "{accept}: {head}");
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            Some(_) => {
                assert!(head.contains("content-encoding: zstd"), "{accept}: {head}");
                zstd::decode_all(&body[..]).unwrap()
            }
            None => {
                assert!(!head.contains("content-encoding"), "{accept}: {head}");
                body.clone()
            }
        };
        assert_eq!(decoded, plain, "{accept}");
        if encoding.is_some() {
            assert!(
                body.len() * 3 < plain.len(),
                "{accept}: {} bytes",
                body.len()
            );
        }
    }
    // /health's short answer is not worth compressing.
    let (head, body) = query("/health", "Accept-Encoding: gzip\r\n", b"");
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("\"status\":\"ok\"")
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
}

/// `serve` on `idx` with files limited to 200 blocks of 512 bytes (a soft limit, which
/// a test may lift) and SIGXFSZ ignored: a write past it fails as on a full disk.
fn served_with_file_size_limit(idx: &Path) -> Served {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -S -f 200 && exec \"$0\" serve \"$1\" --listen 127.0.0.1:0")
        .arg(assert_cmd::cargo::cargo_bin("neardup"))
        .arg(idx);
    Served::spawn(command)
}

/// A write that fails (past a file size limit here, as on a full disk) is answered 503
/// with its cause and nothing of the request acknowledged; the server opens the index
/// again from disk and goes on: once there is room, the same articles are stored, and
/// every article answered before is there once. Sent again, a stored article (of the
/// failed request too) gets the verdict it was stored with, as an uninterrupted run.
#[test]
fn serve_answers_503_on_a_failed_write_and_goes_on_once_there_is_room() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let records = corpus(62, 400, 1_700_000_000);
    let server = served_with_file_size_limit(&idx);
    let mut acknowledged = Vec::new();
    let mut failed_at = None;
    for (n, chunk) in records.chunks(20).enumerate() {
        let (status, answer) = server.request("POST", "/articles", to_jsonl(chunk).as_bytes());
        if status == 503 {
            assert!(answer.contains("File too large (os error 27)"), "{answer}");
            assert!(
                answer.contains("nothing of this request was acknowledged"),
                "{answer}"
            );
            failed_at = Some(n);
            break;
        }
        assert_eq!(status, 200, "{answer}");
        acknowledged.extend(json_lines(&answer).into_iter().map(|v| v["id"].clone()));
    }
    let failed_at = failed_at.expect("the limit is reached");
    // Still serving, reads and writes alike.
    let (status, health) = server.request("GET", "/health", b"");
    assert_eq!(status, 200, "{health}");
    let held = serde_json::from_str::<serde_json::Value>(&health).unwrap()["articles"].clone();
    // Some of the failed request's articles may have been written whole before the limit.
    assert!(
        held.as_u64().unwrap() >= acknowledged.len() as u64,
        "{health}"
    );
    // Room again: the rest goes in, the failed request's articles included.
    rlimit::prlimit(
        server.child.id() as i32,
        rlimit::Resource::FSIZE,
        Some((
            rlimit::Resource::FSIZE.get().unwrap().1,
            rlimit::Resource::FSIZE.get().unwrap().1,
        )),
        None,
    )
    .unwrap();
    let mut answers = Vec::new();
    for chunk in records[failed_at * 20..].chunks(20) {
        let answered = server.post(&to_jsonl(chunk));
        assert_eq!(answered.len(), chunk.len());
        answers.extend(answered);
    }
    // Some of the failed request's articles were stored: sent again, they get their
    // stored verdicts, marked indexed, which is what that request would have answered.
    let resent = answers.iter().filter(|v| v["indexed"] == true).count();
    assert_eq!(
        resent as u64,
        held.as_u64().unwrap() - acknowledged.len() as u64,
        "{health}"
    );
    assert!(resent > 0, "the failed request was partly stored: {health}");
    // And every acknowledged article, sent again, gets its own: all as one uninterrupted
    // run answers.
    let resent_all = server.post(&to_jsonl(&records[..failed_at * 20]));
    assert!(resent_all.iter().all(|v| v["indexed"] == true));
    answers.extend(resent_all);
    let whole = s.path("whole.idx");
    index_ok(&["create", "-q"], &whole, &[]);
    let input = s.write("in.jsonl", to_jsonl(&records));
    let uninterrupted = index_output(&["add", "-q"], &whole, &[&input]);
    assert_eq!(
        verdicts_by_id(&answers),
        verdicts_by_id(&lines_of(&uninterrupted))
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("opening the index again"), "{err}");
    let exported: Vec<serde_json::Value> = lines_of(&index_output(&["export"], &idx, &[]))
        .into_iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(exported.len(), records.len());
    let held: std::collections::HashSet<_> = exported.iter().collect();
    assert!(acknowledged.iter().all(|id| held.contains(id)));
}

/// `serve` cannot use a damaged index. When a failed write makes it open the index
/// again and the log is found damaged (a byte went bad under it), it says to stop it and
/// run `index repair` (which needs the lock it holds); started on the damaged index, it
/// stops and says to run the repair; once repaired, it starts.
#[test]
fn serve_on_a_damaged_index_says_to_stop_and_run_index_repair() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    // No word in common: no stored article is read back as a candidate.
    let records: Vec<serde_json::Value> = (0..400)
        .map(|i| {
            let text = format!("w{i}a w{i}b w{i}c w{i}d w{i}e w{i}f w{i}g w{i}h");
            serde_json::json!({"id": format!("a{i}"), "text": text})
        })
        .collect();
    let server = served_with_file_size_limit(&idx);
    assert_eq!(server.post(&to_jsonl(&records[..5])).len(), 5);
    let log = idx.join("articles.0.log");
    let byte = std::fs::read(&log).unwrap()[40];
    std::os::unix::fs::FileExt::write_all_at(
        &std::fs::OpenOptions::new().write(true).open(&log).unwrap(),
        &[byte ^ 0xFF],
        40,
    )
    .unwrap();
    let failed = records[5..]
        .chunks(5)
        .map(|chunk| server.request("POST", "/articles", to_jsonl(chunk).as_bytes()))
        .find(|(status, _)| *status == 503);
    assert!(failed.is_some(), "the file size limit is reached");
    let stop = format!(
        "serve cannot use a damaged index: stop this server (it holds the index's lock) and \
         run 'neardup index repair {}', then start it again",
        idx.display()
    );
    let (status, health) = server.request("GET", "/health", b"");
    assert_eq!(status, 503, "{health}");
    assert!(health.contains("damaged at byte 24"), "{health}");
    assert!(health.contains(&stop), "{health}");
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains(&stop), "{err}");

    let out = neardup()
        .arg("serve")
        .arg(&idx)
        .args(["--listen", "127.0.0.1:0"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("damaged at byte 24"), "{err}");
    let started = format!(
        "serve cannot use a damaged index: it stops here; run 'neardup index repair {}', then \
         start serve again",
        idx.display()
    );
    assert!(err.contains(&started), "{err}");
    index_ok(&["repair", "-q"], &idx, &[]);
    let server = Served::start(&idx, &[]);
    let (status, health) = server.request("GET", "/health", b"");
    assert_eq!(status, 200, "{health}");
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
}

/// `serve` under a hard limit of 256 open files: enough for 100 connections, not for 512
/// (said at start, with what to do); under a soft limit of 256 alone, it raises it.
#[test]
fn serve_warns_when_the_open_files_limit_is_short_of_its_connections() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let hard = rlimit::Resource::NOFILE.get().unwrap().1;
    let mut cases = vec![("-n", "100", false), ("-n", "512", true)];
    if hard >= 1024 {
        cases.push(("-Sn", "512", false));
    }
    for (limit, connections, warned) in cases {
        let mut server = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit {limit} 256 && exec \"$0\" serve \"$1\" --listen 127.0.0.1:0 \
                 --max-connections \"$2\""
            ))
            .arg(assert_cmd::cargo::cargo_bin("neardup"))
            .arg(&idx)
            .arg(connections)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
        let mut lines = String::new();
        for _ in 0..2 {
            std::io::BufRead::read_line(&mut stderr, &mut lines).unwrap();
            if lines.contains("listening on") && !warned {
                break;
            }
        }
        // Answering, so its signal handlers are in place.
        let address = lines.split("listening on http://").nth(1).unwrap();
        let address = address.lines().next().unwrap();
        assert_eq!(
            try_request(address, "GET", "/health", b"").map(|a| a.0),
            Some(200)
        );
        send_signal(server.id(), "TERM");
        assert!(server.wait().unwrap().success(), "{lines}");
        stderr.read_to_string(&mut lines).unwrap();
        assert_eq!(
            lines.contains("may open 256 files, too few for --max-connections 512"),
            warned,
            "ulimit {limit} 256, {connections}: {lines}"
        );
    }
}

/// `POST /remove` takes articles out while the server goes on answering (the rewrite
/// runs in the background), and answers once they are gone.
/// Ids with spaces around them or a line break in them are taken by every feed command,
/// but `--ids-from` and `/remove` trimmed their lines, so such an article could not be
/// taken down that way; and an id named twice was answered `removed` twice (QA pass 11).
#[test]
fn odd_ids_are_removed_through_json_strings_and_each_id_is_answered_once() {
    let s = Scratch::new();
    let records = [
        serde_json::json!({"id": " b ", "text": RATE}),
        serde_json::json!({"id": "a\nb", "text": STORM}),
        serde_json::json!({"id": "c", "text": "eight nine ten eleven twelve thirteen"}),
        serde_json::json!({"id": "d", "text": "fourteen fifteen sixteen seventeen eighteen"}),
    ];
    let input = s.write("in.jsonl", to_jsonl(&records));
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    index_ok(&["add", "-q"], &idx, &[&input]);
    // A byte-order mark first (Notepad), and ASCII whitespace trimmed, not a no-break
    // space (QA pass 12).
    let ids = s.write(
        "ids.txt",
        "\u{feff}\" b \"\n  \"a\\nb\"\nc\n c \n\n\"c\"\nb\n\u{a0}d\n",
    );
    let out = neardup()
        .args(["index", "remove"])
        .arg(&idx)
        .arg("c")
        .arg("--ids-from")
        .arg(&ids)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        lines_of(&out),
        [
            serde_json::json!({"id": "c", "removed": true}),
            serde_json::json!({"id": " b ", "removed": true}),
            serde_json::json!({"id": "a\nb", "removed": true}),
            serde_json::json!({"id": "b", "removed": false}),
            serde_json::json!({"id": "\u{a0}d", "removed": false}),
        ]
    );
    assert_eq!(index_stats(&idx)["articles"], 1);
    let bad = s.write("bad.txt", "d\n\"unclosed\n");
    let out = neardup()
        .args(["index", "remove"])
        .arg(&idx)
        .arg("--ids-from")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("bad.txt:2: a line starting with '\"' is read as a JSON string"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(index_stats(&idx)["articles"], 1, "nothing removed");

    let served = s.path("served");
    index_ok(&["create", "-q"], &served, &[]);
    index_ok(&["add", "-q"], &served, &[&input]);
    let server = Served::start(&served, &[]);
    let (status, answer) = server.request("POST", "/remove", b"\"unclosed\n");
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("line 1: a line starting with"), "{answer}");
    let (status, answer) = server.request("POST", "/remove", b"\" b \"\n\" b \"\n\"a\\nb\"\n");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        json_lines(&answer),
        [
            serde_json::json!({"id": " b ", "removed": true}),
            serde_json::json!({"id": "a\nb", "removed": true}),
        ]
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert_eq!(index_stats(&served)["articles"], 2);
}

#[test]
fn serve_removes_articles_while_it_answers() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q", "--level", "story"], &idx, &[]);
    let records = story_corpus(12, 600, 1_700_000_000);
    let server = Served::start(&idx, &[]);
    for chunk in records[..400].chunks(100) {
        assert_eq!(server.post(&to_jsonl(chunk)).len(), 100);
    }
    let id = |r: &serde_json::Value| r["id"].as_str().unwrap().to_string();
    let removed: Vec<serde_json::Value> = records[..400].iter().step_by(9).cloned().collect();
    let body = removed.iter().map(|r| id(r) + "\n").collect::<String>() + "not-indexed\n";
    let answered = std::thread::scope(|scope| {
        // Articles keep arriving while the index is rewritten without the removed ones.
        let poster = scope.spawn(|| {
            for chunk in records[400..].chunks(20) {
                assert_eq!(server.post(&to_jsonl(chunk)).len(), 20);
            }
        });
        let answered = server.request("POST", "/remove", body.as_bytes());
        poster.join().unwrap();
        answered
    });
    assert_eq!(answered.0, 200, "{}", answered.1);
    let lines = json_lines(&answered.1);
    assert_eq!(lines.len(), removed.len() + 1);
    assert!(lines[..removed.len()].iter().all(|l| l["removed"] == true));
    assert_eq!(
        lines[removed.len()],
        serde_json::json!({"id": "not-indexed", "removed": false})
    );
    let (_, health) = server.request("GET", "/health", b"");
    let held = records.len() - removed.len();
    assert!(health.contains(&format!("\"articles\":{held}")), "{health}");
    let (status, checked) = server.request("POST", "/query", to_jsonl(&removed).as_bytes());
    assert_eq!(status, 200);
    assert!(
        json_lines(&checked).iter().all(|v| v["indexed"] == false),
        "{checked}"
    );
    let (_, stats) = server.request("GET", "/stats", b"");
    let stats = json_lines(&stats).remove(0);
    assert_eq!(
        stats["removals"],
        serde_json::json!({"waiting": 0, "running": false, "removed": removed.len(), "failed": 0})
    );
    assert_eq!(server.request("POST", "/remove", b"\n\n").0, 400);
    assert_eq!(server.request("GET", "/remove", b"").0, 405);
    // A removal that fails (a directory where the next generation's log goes) is answered
    // with the error, removes nothing, and the server goes on; tried again, it works.
    let in_the_way = idx.join("articles.2.log");
    std::fs::create_dir(&in_the_way).unwrap();
    let again = format!("{}\n", id(&records[1]));
    let (status, answer) = server.request("POST", "/remove", again.as_bytes());
    assert_eq!(status, 500, "{answer}");
    assert!(answer.contains("nothing was removed"), "{answer}");
    let (_, health) = server.request("GET", "/health", b"");
    assert!(health.contains(&format!("\"articles\":{held}")), "{health}");
    std::fs::remove_dir(&in_the_way).unwrap();
    let (status, answer) = server.request("POST", "/remove", again.as_bytes());
    assert_eq!(
        (status, json_lines(&answer)[0]["removed"].clone()),
        (200, true.into())
    );
    let held = held - 1;
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    // Each removal is on the operator's record, the failed one too.
    let record = format!(
        "serve: removed {} articles: {} ",
        removed.len(),
        id(&removed[0])
    );
    assert!(err.contains(&record), "{err}");
    assert!(
        err.contains("a removal failed, nothing was removed"),
        "{err}"
    );
    assert!(
        err.contains(&format!("serve: removed 1 article: {}\n", id(&records[1]))),
        "{err}"
    );
    let ids: Vec<String> = lines_of(&index_output(&["export"], &idx, &[]))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    let mut gone: std::collections::HashSet<String> = removed.iter().map(id).collect();
    gone.insert(id(&records[1]));
    assert_eq!(ids.len(), held);
    let expected: Vec<String> = records
        .iter()
        .map(id)
        .filter(|i| !gone.contains(i))
        .collect();
    assert_eq!(ids, expected);
}

/// A token file holds a token per client (blank lines and comments skipped); SIGHUP reads
/// it again, so a token taken out is refused from then on, and a file left without a
/// token keeps the tokens in force (with a warning).
#[test]
fn serve_takes_several_tokens_and_reads_them_again_on_sighup() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let token_file = s.write("tokens", "# scrapers\nalpha-1\n\n  beta-2  \n");
    let server = Served::start(&idx, &["--token-file", token_file.to_str().unwrap()]);
    let status_with = |token: &str| {
        let head = format!(
            "GET /stats HTTP/1.1\r\nHost: neardup\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        );
        answer_of(&mut connect(&server.address, head.as_bytes())).0
    };
    assert_eq!(status_with("alpha-1"), 200);
    assert_eq!(status_with("beta-2"), 200);
    assert_eq!(status_with("#"), 401);
    assert_eq!(status_with("scrapers"), 401);
    let hangup = || {
        let sent = Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    // alpha-1 revoked, gamma-3 added.
    std::fs::write(&token_file, "beta-2\ngamma-3\n").unwrap();
    hangup();
    let started = Instant::now();
    while status_with("alpha-1") != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reloaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status_with("beta-2"), 200);
    assert_eq!(status_with("gamma-3"), 200);
    // A file left with no token is not taken: the tokens in force stay.
    std::fs::write(&token_file, "# nobody\n").unwrap();
    hangup();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(status_with("gamma-3"), 200);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("read the token file") && err.contains("2 tokens in force"),
        "{err}"
    );
    assert!(
        err.contains("warning: serve: the tokens in force are kept")
            && err.contains("holds no token"),
        "{err}"
    );
}

/// A token limited to some endpoints by its line of the token file is refused the others
/// (403, nothing stored or removed), and SIGHUP changes what it may use.
#[test]
fn serve_limits_each_token_to_the_endpoints_its_line_names() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let token_file = s.write(
        "tokens",
        "scraper articles  # pushes, never removes\ndash query,stats\neditor\n",
    );
    let server = Served::start(&idx, &["--token-file", token_file.to_str().unwrap()]);
    let with = |token: &str, method: &str, path: &str, body: &str| {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: neardup\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        answer_of(&mut connect(&server.address, head.as_bytes()))
    };
    let article =
        |id: &str, text: &str| format!("{}\n", serde_json::json!({"id": id, "text": text}));
    let articles = || {
        let (status, health) = server.request("GET", "/health", b"");
        assert_eq!(status, 200);
        json_lines(&health)[0]["articles"].as_u64().unwrap()
    };

    let (status, answer) = with("scraper", "POST", "/articles", &article("a", RATE));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer)[0]["verdict"], "new");
    for (method, path, body) in [
        ("POST", "/remove", "a\n".to_string()),
        ("POST", "/query", article("q", RATE_COPY)),
        ("GET", "/stats", String::new()),
    ] {
        let (status, answer) = with("scraper", method, path, &body);
        assert_eq!(status, 403, "{path}: {answer}");
        assert!(
            answer.contains(&format!("may not use {path}")) && answer.contains("allows /articles"),
            "{answer}"
        );
    }
    // The dashboard queries and reads the statistics, but stores nothing, even when its
    // body is large (drained, so the 403 still arrives).
    let (status, answer) = with("dash", "POST", "/query", &article("q", RATE_COPY));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer)[0]["verdict"], "duplicate", "{answer}");
    assert_eq!(with("dash", "GET", "/stats", "").0, 200);
    let large = article("b", &STORM.repeat(20_000));
    let (status, answer) = with("dash", "POST", "/articles", &large);
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("allows /query, /stats"), "{answer}");
    assert_eq!(articles(), 1);
    // A token with no list may use everything; an unknown path is still 404 for it.
    assert_eq!(with("editor", "GET", "/elsewhere", "").0, 404);
    let (status, answer) = with("editor", "POST", "/remove", "a\n");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer)[0]["removed"], true, "{answer}");
    assert_eq!(articles(), 0);

    // The scraper, limited to queries from now on.
    std::fs::write(&token_file, "scraper query\neditor\n").unwrap();
    send_signal(server.child.id(), "HUP");
    let started = Instant::now();
    while with("scraper", "POST", "/query", &article("q", STORM)).0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reloaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        with("scraper", "POST", "/articles", &article("c", STORM)).0,
        403
    );
    assert_eq!(with("dash", "GET", "/stats", "").0, 401);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert_eq!(
        lines_of(&index_output(&["export"], &idx, &[])).len(),
        0,
        "the refused requests stored nothing"
    );
}

/// A self-signed certificate for localhost: its PEM and its private key's PEM, and the
/// certificate's DER for a client to trust.
fn self_signed_certificate() -> (String, String, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        made.cert.pem(),
        made.signing_key.serialize_pem(),
        made.cert.der().to_vec(),
    )
}

/// One HTTPS request to `address` (as localhost) from a client that trusts only the
/// certificate `root`: the status and body, or what failed.
fn https_request(
    address: &str,
    root: &[u8],
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    write!(
        tls,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .and_then(|()| tls.flush())
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    match tls.read_to_end(&mut answer) {
        Ok(_) => {}
        // A peer that closes without close_notify, once it has answered.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let answer = String::from_utf8(answer).map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let status = head.split(' ').nth(1).ok_or("no status")?;
    Ok((
        status.parse().map_err(|_| "a bad status")?,
        body.to_string(),
    ))
}

/// `serve --tls-cert --tls-key` answers HTTPS, tells a plain-HTTP client so, and takes a
/// renewed certificate on SIGHUP (a broken one is not taken); a key that is not the
/// certificate's is refused before anything listens.
#[test]
fn serve_speaks_https_and_takes_a_renewed_certificate_on_sighup() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let (first_pem, first_key, first_der) = self_signed_certificate();
    let (second_pem, second_key, second_der) = self_signed_certificate();
    let (cert, key) = (
        s.write("tls.crt", &first_pem),
        s.write("tls.key", &first_key),
    );

    // Refused at start: a key of another certificate; one flag without the other.
    let other_key = s.write("other.key", &second_key);
    for (flags, says) in [
        (
            vec![
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                other_key.to_str().unwrap(),
            ],
            "does not go with the certificate",
        ),
        (vec!["--tls-cert", cert.to_str().unwrap()], "--tls-key"),
    ] {
        let out = neardup()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(&flags)
            .arg(&idx)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr_of(&out);
        assert!(err.contains(says) && !err.contains("listening"), "{err}");
    }

    let server = Served::start(
        &idx,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let body = format!("{}\n", serde_json::json!({"id": "a", "text": RATE}));
    let (status, answer) =
        https_request(&server.address, &first_der, "POST", "/articles", &body).unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer)[0]["verdict"], "new");
    // This connection alone (the accept loop's permit for the next one is not counted),
    // once the server has seen the last one close: on a loaded machine it may not have yet.
    let mut tries = 0;
    loop {
        let (status, stats) =
            https_request(&server.address, &first_der, "GET", "/stats", "").unwrap();
        assert_eq!(status, 200);
        let open = json_lines(&stats)[0]["connections"]["open"].clone();
        tries += 1;
        if open == 1 || tries == 50 {
            assert_eq!(open, 1, "{stats}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Plain HTTP to the HTTPS port: told so, in plain HTTP.
    let (status, answer) = server.request("GET", "/health", b"");
    assert_eq!(status, 400);
    assert!(answer.contains("speaks HTTPS"), "{answer}");
    // A client that trusts only the next certificate is refused until it is in force.
    assert!(https_request(&server.address, &second_der, "GET", "/health", "").is_err());

    std::fs::write(&cert, &second_pem).unwrap();
    std::fs::write(&key, &second_key).unwrap();
    send_signal(server.child.id(), "HUP");
    let started = Instant::now();
    while https_request(&server.address, &second_der, "GET", "/health", "").is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reloaded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(https_request(&server.address, &first_der, "GET", "/health", "").is_err());
    // A key file broken mid-renewal: the pair in force stays.
    std::fs::write(&key, "not a key\n").unwrap();
    send_signal(server.child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(300));
    let (status, health) =
        https_request(&server.address, &second_der, "GET", "/health", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(json_lines(&health)[0]["articles"], 1);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("listening on https://") && err.contains("read the TLS certificate"),
        "{err}"
    );
    assert!(
        err.contains("warning: serve: the TLS certificate") && err.contains("in force are kept"),
        "{err}"
    );
}

#[test]
fn serve_wants_its_token_and_holds_connections_past_its_limit() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    // A token file that is empty, or missing, is refused before anything listens.
    let empty = s.write("empty-token", "\n");
    for (file, says) in [
        (&empty, "holds no token"),
        (&s.path("nowhere"), "reading the token file"),
    ] {
        let out = neardup()
            .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(file)
            .arg(&idx)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr_of(&out);
        assert!(
            err.contains(says) && err.contains(&file.display().to_string()),
            "{err}"
        );
    }
    let token = "s3cret-Token_42";
    let token_file = s.write("token", format!("{token}\n"));
    let token_flag = token_file.to_str().unwrap();
    let server = Served::start(
        &idx,
        &["--token-file", token_flag, "--max-connections", "3"],
    );
    let body = format!("{}\n", serde_json::json!({"id": "a", "text": RATE}));
    let post = |authorization: &str| {
        let head = format!(
            "POST /articles HTTP/1.1\r\nHost: neardup\r\n{authorization}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        answer_of(&mut connect(&server.address, head.as_bytes()))
    };
    // Without the token, with a wrong one, or another scheme: refused, nothing stored.
    for authorization in [
        "",
        "Authorization: Bearer s3cret-Token_4\r\n",
        "Authorization: Bearer s3cret-Token_42x\r\n",
        "Authorization: Basic czNjcmV0\r\n",
    ] {
        let (status, answer) = post(authorization);
        assert_eq!(status, 401, "{authorization:?}: {answer}");
        assert!(answer.contains("--token-file"), "{answer}");
    }
    // A large body without the token still gets its 401 (the body is drained, not left
    // to reset the connection).
    let large = format!(
        "{}\n",
        serde_json::json!({"id": "large", "text": RATE.repeat(80_000)})
    );
    let mut stream = connect(
        &server.address,
        format!(
            "POST /articles HTTP/1.1\r\nHost: neardup\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            large.len()
        )
        .as_bytes(),
    );
    stream.write_all(large.as_bytes()).unwrap();
    assert_eq!(answer_of(&mut stream).0, 401);
    // /health answers anyone (load balancers); the other endpoints do not.
    assert_eq!(server.request("GET", "/health", b"").0, 200);
    assert_eq!(server.request("GET", "/stats", b"").0, 401);
    assert_eq!(server.request("POST", "/query", body.as_bytes()).0, 401);
    assert_eq!(server.request("GET", "/elsewhere", b"").0, 401);
    let (status, answer) = post(&format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(json_lines(&answer)[0]["verdict"], "new");
    // The scheme's name is case-insensitive (RFC 7235).
    let (status, answer) = post(&format!("Authorization: bearer {token}\r\n"));
    assert_eq!(status, 200, "{answer}");

    // Three connections at most: with three open, a fourth is answered only once one
    // of them closes.
    let stats_request = format!(
        "GET /stats HTTP/1.1\r\nHost: neardup\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    let mut held: Vec<_> = (0..3).map(|_| connect(&server.address, b"")).collect();
    let mut waiting = connect(&server.address, stats_request.as_bytes());
    waiting
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut first = [0u8; 1];
    let early = waiting.read(&mut first);
    assert!(
        early.is_err(),
        "answered with three connections open: {early:?}"
    );
    drop(held.pop());
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (status, stats) = answer_of(&mut waiting);
    assert_eq!(status, 200, "{stats}");
    let stats = json_lines(&stats).remove(0);
    assert_eq!(stats["connections"]["max"], 3);
    assert_eq!(stats["connections"]["open"], 3, "{stats}");
    assert_eq!(stats["requests"]["401"], 8, "{stats}");
    drop(held);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    let ids: Vec<String> = lines_of(&index_output(&["export"], &idx, &[]))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["a"]);
}

#[test]
fn serve_cuts_off_stalled_and_broken_requests_and_stores_none_of_them() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(
        &idx,
        &[
            "--threads",
            "1",
            "--read-timeout",
            "3s",
            "--max-body-bytes",
            "64KiB",
        ],
    );
    let article = |id: &str| format!("{}\n", serde_json::json!({"id": id, "text": RATE}));
    // More stalled bodies than threads, a connection that sends nothing, one that stops
    // mid-head: none of them keeps the others from being answered.
    let mut stalled: Vec<_> = (0..8)
        .map(|i| {
            let first = article(&format!("stalled-{i}"));
            let head = format!(
                "POST /articles HTTP/1.1\r\nHost: neardup\r\nContent-Length: 60000\r\n\r\n{first}"
            );
            connect(&server.address, head.as_bytes())
        })
        .collect();
    let _silent = connect(&server.address, b"");
    let _half_head = connect(&server.address, b"POST /articles HTTP/1.1\r\nHo");
    let started = Instant::now();
    let answers = server.post(&article("prompt"));
    assert_eq!(answers[0]["verdict"], "new");
    // Well before the stalled requests time out (3 s), with room for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered only after {:?}, behind the stalled requests",
        started.elapsed()
    );
    for stream in &mut stalled {
        let (status, body) = answer_of(stream);
        assert_eq!(status, 408, "{body}");
        assert!(body.contains("--read-timeout"), "{body}");
    }

    // A body that breaks off: refused, and its complete first line is not stored.
    let mut broken = connect(
        &server.address,
        format!(
            "POST /articles HTTP/1.1\r\nHost: neardup\r\nContent-Length: 5000\r\n\r\n{}",
            article("broken")
        )
        .as_bytes(),
    );
    broken.shutdown(std::net::Shutdown::Write).unwrap();
    let (status, body) = answer_of(&mut broken);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("nothing of this request was stored"),
        "{body}"
    );
    // A chunked body over the limit, which declares no length: refused whole, answered.
    let mut chunked = connect(
        &server.address,
        b"POST /articles HTTP/1.1\r\nHost: neardup\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for _ in 0..40 {
        let chunk = article("big").repeat(8).into_bytes();
        write!(chunked, "{:x}\r\n", chunk.len()).unwrap();
        chunked.write_all(&chunk).unwrap();
        chunked.write_all(b"\r\n").unwrap();
    }
    chunked.write_all(b"0\r\n\r\n").unwrap();
    let (status, body) = answer_of(&mut chunked);
    assert_eq!(status, 413, "{body}");

    // SIGTERM while a request stalls: serve waits for it at most --read-timeout.
    let _stalled_at_stop = connect(
        &server.address,
        b"POST /articles HTTP/1.1\r\nHost: neardup\r\nContent-Length: 100\r\n\r\n{",
    );
    std::thread::sleep(Duration::from_millis(100));
    let stopped = Instant::now();
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "stopped after {:?}",
        stopped.elapsed()
    );
    let ids: Vec<String> = lines_of(&index_output(&["export"], &idx, &[]))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["prompt"]);
}

/// `index stats` of `idx` (it runs beside a writer).
fn index_stats(idx: &Path) -> serde_json::Value {
    lines_of(&index_output(&["stats"], idx, &[])).remove(0)
}

/// Waits (at most 20 s) until `index stats` of `idx` gives `field` the `value`.
/// The server's compaction record once its `field` has reached `at_least`, polled: on a
/// loaded machine a compaction may come seconds after --compact-every says.
fn compactions_once(server: &Served, field: &str, at_least: u64) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (status, stats) = server.request("GET", "/stats", b"");
        assert_eq!(status, 200, "{stats}");
        let compactions = json_lines(&stats)[0]["compactions"].clone();
        if compactions[field].as_u64() >= Some(at_least) {
            return compactions;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "compactions {field} never reached {at_least}: {compactions}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_stat(idx: &Path, field: &str, value: u64) {
    let started = Instant::now();
    while index_stats(idx)[field] != value {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never compacted: {}",
            index_stats(idx)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The story statistics of `lines`, counted by `neardup stats count` into a file.
fn counted_stats(s: &Scratch, lines: &str) -> std::path::PathBuf {
    let (input, stats) = (s.write("counted.jsonl", lines), s.path("counted.stats"));
    let out = neardup()
        .args(["stats", "count", "-q"])
        .arg(&input)
        .arg("-o")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    stats
}

/// `neardup watch FLAGS IDX` running, and its standard input.
fn watching(idx: &Path, flags: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .arg("watch")
        .args(flags)
        .arg(idx)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = watch.stdin.take().unwrap();
    (watch, stdin)
}

#[test]
fn watch_and_serve_compact_a_windowed_index_while_they_run() {
    let s = Scratch::new();
    // 200 articles an hour apart against a 24-hour window: the first 175 are older than
    // it once the last has arrived.
    let records = corpus(17, 200, 1_700_000_000);
    let lines = to_jsonl(&records);
    let kept: Vec<&str> = records[175..]
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let exported_ids = |idx: &Path| -> Vec<String> {
        lines_of(&index_output(&["export"], idx, &[]))
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };

    let idx = s.path("served");
    index_ok(&["create", "-q", "--window", "24h"], &idx, &[]);
    let server = Served::start(&idx, &["--compact-every", "1s"]);
    for chunk in lines.lines().collect::<Vec<_>>().chunks(50) {
        assert_eq!(server.post(&(chunk.join("\n") + "\n")).len(), 50);
    }
    wait_for_stat(&idx, "articles", 25);
    // It goes on answering, from the compacted index.
    let again = server.post(&to_jsonl(&records[199..]));
    assert_eq!(again[0]["indexed"], true, "{again:?}");
    let (_, stats) = server.request("GET", "/stats", b"");
    let compactions = &json_lines(&stats)[0]["compactions"];
    assert_eq!(
        (
            &compactions["every_seconds"],
            &compactions["done"],
            &compactions["failed"]
        ),
        (&1.into(), &1.into(), &0.into()),
        "{compactions}"
    );
    let last = &compactions["last"];
    assert_eq!(
        (&last["removed"], &last["kept"]),
        (&175.into(), &25.into()),
        "{last}"
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("serve: compacted: removed 175 articles older than the window, kept 25"),
        "{err}"
    );
    assert_eq!(exported_ids(&idx), kept);
    assert_eq!(index_stats(&idx)["generation"], 1);

    // watch, with standard input left open after the articles.
    let idx = s.path("watched");
    index_ok(&["create", "-q", "--window", "24h"], &idx, &[]);
    let (watch, mut stdin) = watching(&idx, &["--compact-every", "1s"]);
    stdin.write_all(lines.as_bytes()).unwrap();
    stdin.flush().unwrap();
    wait_for_stat(&idx, "articles", 25);
    // Dated as the last one, so that nothing more expires whenever it arrives.
    let late = serde_json::json!({"id": "late", "text": RATE, "date": records[199]["date"]});
    stdin.write_all(format!("{late}\n").as_bytes()).unwrap();
    drop(stdin);
    let out = watch.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(lines_of(&out).len(), 201, "every line answered");
    assert!(
        stderr_of(&out).contains("watch: compacted: removed 175 articles"),
        "{}",
        stderr_of(&out)
    );
    let mut expected: Vec<String> = kept.iter().map(|id| id.to_string()).collect();
    expected.push("late".into());
    assert_eq!(exported_ids(&idx), expected);

    // --compact-every none leaves the index alone.
    let idx = s.path("never");
    index_ok(&["create", "-q", "--window", "24h"], &idx, &[]);
    let server = Served::start(&idx, &["--compact-every", "none"]);
    assert_eq!(server.post(&lines).len(), 200);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, err) = server.stop();
    assert!(status.success() && !err.contains("compacted"), "{err}");
    assert_eq!(index_stats(&idx)["articles"], 200);
}

#[test]
fn a_failed_compaction_is_warned_of_and_tried_again_while_serving() {
    let s = Scratch::new();
    let records = corpus(19, 200, 1_700_000_000);
    let idx = s.path("idx");
    index_ok(&["create", "-q", "--window", "24h"], &idx, &[]);
    // The next generation's log cannot be created while a directory holds its name.
    let blocker = idx.join("articles.1.log");
    std::fs::create_dir(&blocker).unwrap();
    let server = Served::start(&idx, &["--compact-every", "1s"]);
    assert_eq!(server.post(&to_jsonl(&records)).len(), 200);
    let compactions = compactions_once(&server, "failed", 2);
    assert_eq!(compactions["done"], 0, "{compactions}");
    let stats = index_stats(&idx);
    assert_eq!(
        (stats["generation"].as_u64(), stats["articles"].as_u64()),
        (Some(0), Some(200))
    );
    let again = server.post(&to_jsonl(&records[199..]));
    assert_eq!(again[0]["indexed"], true, "still answering: {again:?}");
    std::fs::remove_dir(&blocker).unwrap();
    wait_for_stat(&idx, "articles", 25);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("warning: serve: compacting the index failed; it stays as it was")
            && err.contains("articles.1.log")
            && err.contains("serve: compacted: removed 175 articles"),
        "{err}"
    );
}

#[test]
fn a_compaction_that_cannot_tell_which_generation_is_in_force_stops_the_writes_until_reopened() {
    let s = Scratch::new();
    let records = corpus(19, 200, 1_700_000_000);
    let idx = s.path("idx");
    index_ok(&["create", "-q", "--window", "24h"], &idx, &[]);
    let server = Served::start(&idx, &["--compact-every", "1s"]);
    assert_eq!(server.post(&to_jsonl(&records[..150])).len(), 150);
    // index.meta can be neither replaced nor read while a directory holds its name, so
    // the switch cannot tell whether its rename happened.
    let meta = std::fs::read(idx.join("index.meta")).unwrap();
    std::fs::remove_file(idx.join("index.meta")).unwrap();
    std::fs::create_dir(idx.join("index.meta")).unwrap();
    assert_eq!(server.post(&to_jsonl(&records[150..])).len(), 50);
    compactions_once(&server, "failed", 1);
    // Nothing more goes into a log that may no longer be the one in force, and the index
    // cannot be opened again while index.meta cannot be read: articles get 503.
    let late = serde_json::json!({"id": "late", "text": RATE, "date": records[199]["date"]});
    let late = format!("{late}\n");
    let (status, answer) = server.request("POST", "/articles", late.as_bytes());
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.contains("index.meta could not be written whole"),
        "{answer}"
    );
    let (status, health) = server.request("GET", "/health", b"");
    assert_eq!(status, 503, "{health}");
    assert!(health.contains("\"status\":\"read-only\""), "{health}");
    // Once it can be read, the next request opens the generation in force and goes on.
    std::fs::remove_dir(idx.join("index.meta")).unwrap();
    std::fs::write(idx.join("index.meta"), meta).unwrap();
    let answered = (0..3)
        .map(|_| server.request("POST", "/articles", late.as_bytes()))
        .find(|(status, _)| *status == 200);
    assert!(answered.is_some_and(|(_, a)| a.contains("\"id\":\"late\"")));
    assert_eq!(server.request("GET", "/health", b"").0, 200);
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
    assert!(err.contains("compacting the index failed"), "{err}");
    // Every acknowledged article is in the generation in force.
    let stats = index_stats(&idx);
    assert_eq!(
        (stats["generation"].as_u64(), stats["articles"].as_u64()),
        (Some(0), Some(201))
    );
}

#[test]
fn compacting_while_watching_changes_no_verdict() {
    // A window compaction removes only articles that can no longer match; with word
    // statistics given at create (which compaction leaves alone), every verdict is
    // the one a run without compaction gives, at both levels.
    let s = Scratch::new();
    let records = corpus(23, 240, 1_700_000_000);
    let (first, second) = (to_jsonl(&records[..120]), to_jsonl(&records[120..]));
    let stats = counted_stats(&s, &(first.clone() + &second));
    for level in ["copy", "story"] {
        let create = |name: &str| {
            let idx = s.path(&format!("{level}-{name}"));
            let stats = stats.to_str().unwrap();
            let mut flags = vec!["create", "-q", "--level", level, "--window", "24h"];
            if level == "story" {
                flags.extend(["--stats", stats]);
            }
            index_ok(&flags, &idx, &[]);
            idx
        };
        let plain = create("plain");
        let expected = neardup()
            .args(["watch", "--compact-every", "none"])
            .arg(&plain)
            .write_stdin(first.clone() + &second)
            .output()
            .unwrap();
        let compacted = create("compacted");
        let (watch, mut stdin) = watching(&compacted, &["--compact-every", "1s"]);
        stdin.write_all(first.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // The first half is compacted before the second arrives.
        wait_for_stat(&compacted, "generation", 1);
        stdin.write_all(second.as_bytes()).unwrap();
        drop(stdin);
        let out = watch.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(lines_of(&out).len(), 240);
        assert_eq!(stdout_of(&out), stdout_of(&expected), "{level}");
        assert!(
            lines_of(&out).iter().any(|v| v["verdict"] != "new"),
            "{level}: some article matches"
        );
    }
}

#[test]
fn compacting_a_story_index_without_statistics_is_warned_of() {
    let s = Scratch::new();
    let input = s.write("feed.jsonl", to_jsonl(&corpus(29, 30, 1_700_000_000)));
    let stats = counted_stats(&s, &std::fs::read_to_string(&input).unwrap());
    let stats = stats.to_str().unwrap();
    for (name, create, watch, warned) in [
        ("accumulated", &[][..], &[][..], true),
        (
            "accumulated-never",
            &[][..],
            &["--compact-every", "none"][..],
            false,
        ),
        ("fixed", &["--stats", stats][..], &[][..], false),
    ] {
        let idx = s.path(name);
        let mut flags = vec!["create", "-q", "--level", "story"];
        flags.extend(create);
        index_ok(&flags, &idx, &[]);
        let out = neardup()
            .arg("watch")
            .args(watch)
            .arg(&idx)
            .write_stdin(std::fs::read_to_string(&input).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(
            stderr_of(&out).contains("each compaction (--compact-every) changes later scores"),
            warned,
            "{name}: {}",
            stderr_of(&out)
        );
    }
}

#[test]
fn serve_drops_a_client_that_stops_reading_its_answer() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let server = Served::start(&idx, &["--read-timeout", "2s"]);
    // 150,000 queries answer with about 14 MB, far more than the sockets buffer.
    let body: String = (0..150_000)
        .map(|i| format!("{{\"id\":\"q{i}\",\"text\":\"a short probe\"}}\n"))
        .collect();
    let address: std::net::SocketAddr = server.address.parse().unwrap();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "POST /query HTTP/1.1\r\nHost: neardup\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    // Not reading: the server gives up on the answer after --read-timeout.
    std::thread::sleep(Duration::from_secs(5));
    // Long: on a loaded machine the 150,000 queries take a while before any answer.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer); // the end, or a reset
    let head = String::from_utf8_lossy(&answer[..answer.len().min(300)]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap_or_else(|| panic!("no length in {head:?}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        answer.len() < length,
        "the whole answer ({length} bytes) waited for a client that did not read"
    );
    // And the server goes on.
    assert_eq!(
        server.post(&to_jsonl(&corpus(3, 2, 1_700_000_000))).len(),
        2
    );
    let (status, err) = server.stop();
    assert!(status.success(), "{err}");
}

/// The articles of a generated corpus, fingerprinted for `index`.
fn articles_of(index: &FeedIndex, records: &[serde_json::Value]) -> Vec<Article> {
    let mut fingerprinter = index.fingerprinter();
    records
        .iter()
        .map(|r| {
            Article::from_json(
                &r.to_string(),
                &FieldNames::default(),
                &mut fingerprinter,
                0,
            )
            .unwrap()
        })
        .collect()
}

fn queried(index: &mut FeedIndex, articles: &[Article]) -> Vec<neardup::feed::Verdict> {
    articles
        .iter()
        .map(|a| index.query(a).unwrap().unwrap())
        .collect()
}

/// `watch` and `serve` compact in the background: what is added while a compaction runs
/// is answered from the old generation and then taken into the new one. The result must
/// be what compacting at the start and then adding the same articles gives (verdicts of
/// later articles, counts), and what reopening it from disk gives: at both levels, and
/// with story statistics fixed or accumulated. An article older than the window added
/// meanwhile is removed with the others.
#[test]
fn a_background_compaction_takes_in_what_was_added_while_it_ran() {
    let (hour, t0) = (3_600, 1_700_000_000);
    let window = 240 * hour;
    let records = story_corpus(29, 560, t0);
    let (before, during, after) = (&records[..400], &records[400..480], &records[480..]);
    let mut old_one = records[5].clone();
    old_one["id"] = "late-but-old".into();
    for (level, fixed) in [
        (Level::Copy, false),
        (Level::Story, true),
        (Level::Story, false),
    ] {
        let what = format!("{level:?}, fixed statistics {fixed}");
        let s = Scratch::new();
        let settings = if level == Level::Copy {
            settings_of(PipelineBuilder::new(), Some(window))
        } else {
            story_settings(Some(window))
        };
        let stats = fixed.then(|| {
            FeedIndex::create(&s.path("probe"), &settings).unwrap();
            let probe = FeedIndex::open(&s.path("probe"), Access::Read, &Silent).unwrap();
            let mut stats = neardup::story::StoryStats::new();
            for a in articles_of(&probe, &records) {
                stats.add(a.story.as_ref().unwrap());
            }
            stats
        });
        let open = |name: &str| {
            FeedIndex::create_with_stats(&s.path(name), &settings, stats.as_ref()).unwrap();
            FeedIndex::open(&s.path(name), Access::Write, &Silent).unwrap()
        };
        let (mut background, mut at_start) = (open("background"), open("at-start"));
        let before = articles_of(&background, before);
        let during = articles_of(&background, during);
        let after = articles_of(&background, after);
        let old_one = articles_of(&background, std::slice::from_ref(&old_one)).remove(0);
        for index in [&mut background, &mut at_start] {
            for a in &before {
                index.add(a).unwrap().unwrap();
            }
        }
        let compaction = background
            .start_compaction()
            .unwrap()
            .expect("some expired");
        let report = at_start.compact(&Silent).unwrap();
        assert_eq!((report.removed, report.kept), (159, 241), "{what}");
        // Accumulated statistics: at_start no longer counts the removed articles' words.
        let same_scores = fixed || level == Level::Copy;
        for a in &during {
            let meanwhile = background.add(a).unwrap();
            let compacted_first = at_start.add(a).unwrap();
            if same_scores {
                assert_eq!(meanwhile, compacted_first, "{what}");
            }
        }
        // Still answered from the old generation, where the article it copies is.
        let v = background.add(&old_one).unwrap().unwrap();
        assert_eq!(v.best().map(|m| m.id.as_str()), Some("doc-00005"), "{what}");
        let report = background.finish_compaction(compaction).unwrap();
        assert_eq!((report.removed, report.kept), (160, 321), "{what}");
        assert!(report.log_bytes.1 < report.log_bytes.0, "{what}");
        assert!(!background.contains("late-but-old").unwrap(), "{what}");
        assert_eq!(background.stats().generation, 1, "{what}");
        if same_scores {
            assert_eq!(
                queried(&mut background, &after),
                queried(&mut at_start, &after),
                "{what}"
            );
        }
        background.commit().unwrap();
        let mut reopened = FeedIndex::open(&s.path("background"), Access::Read, &Silent).unwrap();
        assert_eq!(
            queried(&mut background, &after),
            queried(&mut reopened, &after),
            "{what}: the compacted index in memory and on disk differ"
        );
        let counts = |index: &FeedIndex| {
            // Memory differs: a loaded band table has no delta.
            let stats = neardup::feed::IndexStats {
                memory_bytes: 0,
                ..index.stats()
            };
            format!("{stats:?}")
        };
        assert_eq!(counts(&reopened), counts(&background), "{what}");
        // It goes on: adding, and compacting again.
        for a in &after {
            background.add(a).unwrap().unwrap();
        }
        assert_eq!(background.compact(&Silent).unwrap().removed, 160, "{what}");
        let logs: Vec<String> = std::fs::read_dir(s.path("background"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("articles."))
            .collect();
        assert_eq!(logs, ["articles.2.log"], "{what}");
    }
}

/// An abandoned background compaction leaves the index as it was.
#[test]
fn an_abandoned_background_compaction_changes_nothing() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let (hour, t0) = (3_600, 1_700_000_000);
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), Some(24 * hour))).unwrap();
    let mut index = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let records = corpus(3, 100, t0);
    let articles = articles_of(&index, &records);
    for a in &articles[..90] {
        index.add(a).unwrap().unwrap();
    }
    let compaction = index.start_compaction().unwrap().expect("some expired");
    // A second compaction would write the same new generation.
    let refused = index.compact(&Silent).unwrap_err().to_string();
    assert!(
        refused.contains("being compacted in the background"),
        "{refused}"
    );
    assert!(index.start_compaction().is_err());
    drop(compaction);
    for a in &articles[90..] {
        index.add(a).unwrap().unwrap();
    }
    index.commit().unwrap();
    let logs = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("articles."))
            .collect();
        names.sort();
        names
    };
    assert_eq!(logs(&dir), ["articles.0.log"]);
    assert_eq!(index.stats().articles, 100);
    assert_eq!(
        FeedIndex::open(&dir, Access::Read, &Silent).unwrap().len(),
        100
    );
    let report = index.compact(&Silent).unwrap();
    assert_eq!((report.removed, report.kept), (75, 25));
    assert_eq!(logs(&dir), ["articles.1.log"]);
}

/// The feed commands' refused flag values are usage errors (exit 2) before anything is
/// opened, as the batch commands' are; they exited 1, as a failed run.
#[test]
fn feed_flag_values_out_of_range_are_usage_errors() {
    let s = Scratch::new();
    let idx = s.path("idx");
    index_ok(&["create", "-q"], &idx, &[]);
    let idx = idx.to_str().unwrap();
    let new = s.path("new");
    let new = new.to_str().unwrap();
    let input = s.jsonl("a.jsonl", &good_records());
    let input = input.to_str().unwrap();
    for (args, message) in [
        (
            vec!["serve", idx, "--max-connections", "0"],
            "'--max-connections <N>'",
        ),
        (
            vec!["serve", idx, "--max-body-bytes", "0"],
            "must be at least 1 byte",
        ),
        (vec!["watch", idx, "--max-group", "0"], "'--max-group <N>'"),
        (
            vec!["serve", idx, "--listen", "nonsense"],
            "'--listen <ADDR>': give HOST:PORT",
        ),
        (
            vec!["serve", idx, "--listen", "host name:80"],
            "'--listen <ADDR>': give HOST:PORT",
        ),
        (
            vec!["serve", idx, "--listen", "[127.0.0.1]:80"],
            "'--listen <ADDR>': give HOST:PORT",
        ),
        (
            vec!["index", "remove", idx],
            "no id to remove: give ids as arguments or in a file with --ids-from",
        ),
        (
            vec!["index", "add", idx, input, "--commit-every", "0"],
            "'--commit-every <N>'",
        ),
        (
            vec![
                "index",
                "create",
                new,
                "--level",
                "story",
                "--story-threshold",
                "1.5",
            ],
            "'--story-threshold <P>': must be a number from 0 to 1",
        ),
        (
            vec![
                "index",
                "create",
                new,
                "--level",
                "story",
                "--story-candidates",
                "1.5",
            ],
            "'--story-candidates <T>': must be a number above 0 and at most 1",
        ),
        (
            vec!["index", "create", new, "--stats", input],
            "it needs --level story",
        ),
        // A bare number meant seconds: a window of 72 s matched almost nothing.
        (
            vec!["index", "create", new, "--window", "72"],
            "'--window <DURATION>': give a unit, e.g. 72h",
        ),
        // Past the runtime's own limit this once panicked after listening.
        (
            vec!["serve", idx, "--max-connections", "2305843009213693952"],
            "'--max-connections <N>': must be a whole number from 1 to 1048576",
        ),
        (
            vec!["serve", idx, "--max-connections", "0"],
            "'--max-connections <N>'",
        ),
    ] {
        refused_as_usage(neardup().args(&args).write_stdin(""), message);
    }
    assert!(!s.path("new").exists());
    let stats = &lines_of(&index_output(&["stats"], &s.path("idx"), &[]))[0];
    assert_eq!(stats["articles"], 0, "nothing added");
}

/// What a reader answers about `records`: the verdict on a copy of each under another
/// id (`probe-<id>`), and its counts. A reader kept open while the writer went on must
/// answer exactly as one opened now.
type ReaderAnswers = (
    Vec<neardup::feed::Verdict>,
    Vec<u64>,
    Option<(i64, i64)>,
    Option<u64>,
);

fn probes_of(index: &FeedIndex, records: &[serde_json::Value]) -> Vec<Article> {
    let copies: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let mut copy = r.clone();
            copy["id"] = format!("probe-{}", r["id"].as_str().unwrap()).into();
            copy
        })
        .collect();
    articles_of(index, &copies)
}

fn reader_answers(reader: &mut FeedIndex, probes: &[Article]) -> ReaderAnswers {
    let verdicts = probes
        .iter()
        .map(|a| reader.query(a).unwrap().unwrap())
        .collect();
    let s = reader.stats();
    (
        verdicts,
        vec![
            s.generation,
            s.articles,
            s.new,
            s.duplicates,
            s.rewrites,
            s.clusters_with_duplicates,
            s.expired,
            s.recovered_tail_bytes,
        ],
        s.time_range,
        s.story_documents,
    )
}

/// Whether the verdict on `probe` names the article `id` among its matches.
fn matches_id(reader: &mut FeedIndex, probe: &Article, id: &str) -> bool {
    let v = reader.query(probe).unwrap().unwrap();
    v.matches.iter().any(|m| m.id == id)
}

#[test]
fn a_reader_follows_what_the_writer_adds_removes_and_compacts() {
    let (hour, t0) = (3_600, 1_700_000_000);
    let records = story_corpus(53, 300, t0);
    let id = |n: usize| records[n]["id"].as_str().unwrap().to_string();
    for level in [Level::Copy, Level::Story] {
        let s = Scratch::new();
        let dir = s.path("idx");
        let settings = match level {
            Level::Copy => settings_of(PipelineBuilder::new(), Some(120 * hour)),
            _ => story_settings(Some(120 * hour)),
        };
        FeedIndex::create(&dir, &settings).unwrap();
        let mut writer = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
        let articles = articles_of(&writer, &records);
        for a in &articles[..150] {
            writer.add(a).unwrap().unwrap();
        }
        writer.commit().unwrap();
        let mut reader = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
        let probes = probes_of(&reader, &records);
        let fresh = || FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
        assert!(!reader.refresh().unwrap(), "{level:?}: nothing changed");
        assert!(!matches_id(&mut reader, &probes[200], &id(200)));

        // Added and committed: the reader's next answer sees it.
        for a in &articles[150..250] {
            writer.add(a).unwrap().unwrap();
        }
        writer.commit().unwrap();
        assert!(matches_id(&mut reader, &probes[200], &id(200)), "{level:?}");
        assert_eq!(reader.len(), 250, "{level:?}");
        assert_eq!(
            reader_answers(&mut reader, &probes),
            reader_answers(&mut fresh(), &probes),
            "{level:?}: after additions"
        );
        // Added but not committed (still in the writer's memory): not seen.
        writer.add(&articles[250]).unwrap().unwrap();
        assert!(!reader.refresh().unwrap());
        assert!(!matches_id(&mut reader, &probes[250], &id(250)));
        writer.commit().unwrap();
        assert!(reader.refresh().unwrap());
        assert!(matches_id(&mut reader, &probes[250], &id(250)));

        // Removed: a new generation, the old log deleted under the reader.
        let removed = writer.remove(&[id(200)], &Silent).unwrap();
        assert_eq!(removed.found, [true]);
        assert!(!dir.join("articles.0.log").exists());
        assert!(
            !matches_id(&mut reader, &probes[200], &id(200)),
            "{level:?}"
        );
        assert_eq!(reader.stats().generation, 1);
        assert_eq!(
            reader_answers(&mut reader, &probes),
            reader_answers(&mut fresh(), &probes),
            "{level:?}: after a removal"
        );

        // Compacted (and added to after): the reader follows to the generation in force.
        let report = writer.compact(&Silent).unwrap();
        assert!(report.removed > 0, "{level:?}: {report:?}");
        for a in &articles[251..] {
            writer.add(a).unwrap().unwrap();
        }
        writer.commit().unwrap();
        assert!(!matches_id(&mut reader, &probes[3], &id(3)), "{level:?}");
        assert!(matches_id(&mut reader, &probes[280], &id(280)), "{level:?}");
        let answers = reader_answers(&mut reader, &probes);
        assert_eq!(answers.1[0], 2, "{level:?}: generation");
        assert_eq!(
            answers,
            reader_answers(&mut fresh(), &probes),
            "{level:?}: after a compaction"
        );
        // A writer that reads nothing of others has nothing to take in.
        assert!(!writer.refresh().unwrap());
    }
}

#[test]
fn a_reader_never_takes_in_a_torn_frame() {
    let s = Scratch::new();
    let dir = s.path("idx");
    let records = corpus(61, 41, 1_700_000_000);
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), None)).unwrap();
    let log = dir.join("articles.0.log");
    let mut writer = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let articles = articles_of(&writer, &records);
    for a in &articles[..40] {
        writer.add(a).unwrap().unwrap();
    }
    writer.commit().unwrap();
    let durable = std::fs::read(&log).unwrap();
    writer.add(&articles[40]).unwrap().unwrap();
    writer.commit().unwrap();
    drop(writer);
    let whole = std::fs::read(&log).unwrap();
    let frame = &whole[durable.len()..];
    // The reader opens before the last frame is there; then it is written bit by bit.
    std::fs::write(&log, &durable).unwrap();
    let mut reader = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    let probes = probes_of(&reader, &records);
    let late = records[40]["id"].as_str().unwrap();
    for cut in [1, 4, 8, 9, frame.len() / 2, frame.len() - 1] {
        std::fs::write(&log, &whole[..durable.len() + cut]).unwrap();
        assert!(!reader.refresh().unwrap(), "cut {cut}");
        assert!(!matches_id(&mut reader, &probes[40], late), "cut {cut}");
        assert_eq!(reader.len(), 40);
        assert_eq!(reader.stats().recovered_tail_bytes, cut as u64);
        let mut fresh = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
        assert_eq!(
            reader_answers(&mut reader, &probes),
            reader_answers(&mut fresh, &probes),
            "cut {cut}"
        );
    }
    std::fs::write(&log, &whole).unwrap();
    assert!(reader.refresh().unwrap());
    assert!(matches_id(&mut reader, &probes[40], late));
    assert_eq!((reader.len(), reader.stats().recovered_tail_bytes), (41, 0));

    // Damage (a bad stretch with an intact frame after it) is refused as opening refuses
    // it, every time, and the reader goes on once the log is whole again.
    let damaged = [&whole[..], &[0xAB; 16], frame].concat();
    std::fs::write(&log, &damaged).unwrap();
    let opening = FeedIndex::open(&dir, Access::Read, &Silent)
        .unwrap_err()
        .to_string();
    assert!(opening.contains("is damaged at byte"), "{opening}");
    for _ in 0..2 {
        let refreshing = reader.query(&probes[0]).unwrap_err().to_string();
        assert_eq!(refreshing, opening);
    }
    std::fs::write(&log, &whole).unwrap();
    assert_eq!(reader.len(), 41);
    let mut fresh = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    assert_eq!(
        reader_answers(&mut reader, &probes),
        reader_answers(&mut fresh, &probes)
    );
}

#[test]
fn a_reader_answers_throughout_while_the_writer_removes_and_compacts() {
    let (hour, t0) = (3_600, 1_700_000_000);
    let records = corpus(67, 240, t0);
    let s = Scratch::new();
    let dir = s.path("idx");
    FeedIndex::create(&dir, &settings_of(PipelineBuilder::new(), Some(60 * hour))).unwrap();
    let mut writer = FeedIndex::open(&dir, Access::Write, &Silent).unwrap();
    let articles = articles_of(&writer, &records);
    let mut reader = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    let probes = probes_of(&reader, &records);
    let ids: Vec<String> = articles.iter().map(|a| a.id.clone()).collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let queries = std::thread::scope(|scope| {
        scope.spawn(|| {
            for (round, chunk) in articles.chunks(12).enumerate() {
                for a in chunk {
                    writer.add(a).unwrap().unwrap();
                }
                writer.commit().unwrap();
                if round % 3 == 2 {
                    writer.remove(&[ids[round * 12].clone()], &Silent).unwrap();
                }
                if round % 5 == 4 {
                    writer.compact(&Silent).unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        let mut queries = 0;
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            let probe = &probes[queries % probes.len()];
            reader.query(probe).unwrap().unwrap();
            queries += 1;
        }
        queries
    });
    assert!(queries > 0);
    assert!(
        reader.stats().generation >= 6,
        "{}",
        reader.stats().generation
    );
    let mut fresh = FeedIndex::open(&dir, Access::Read, &Silent).unwrap();
    assert_eq!(
        reader_answers(&mut reader, &probes),
        reader_answers(&mut fresh, &probes)
    );
}
