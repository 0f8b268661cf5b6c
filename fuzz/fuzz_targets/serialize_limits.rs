//! The input picks payload limits, a compression and a flush of series and sketches; every
//! payload must respect every limit, decompress to no more than the uncompressed limit, and the
//! items in payloads plus the items counted as too big must be all the input.
#![no_main]

use dogpipe::{
    Compression, Endpoint, Flush, PayloadLimits, Point, Serializer, SerializerConfig, Series,
    SeriesKind, Sketch, SketchPoint,
};
use dogpipe::Text;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Reads little pieces of the input, zeros when it runs out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) | u16::from(self.byte()) << 8
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.byte() % 24) as usize;
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn text(&mut self) -> Text {
        Text::from(self.bytes())
    }
}

fn decompressed_len(compression: Compression, body: &[u8], cap: usize) -> usize {
    let mut out = Vec::new();
    let limit = cap as u64 + 1;
    match compression {
        Compression::Zstd { .. } => zstd::stream::read::Decoder::new(body)
            .unwrap()
            .take(limit)
            .read_to_end(&mut out)
            .unwrap(),
        Compression::Zlib { .. } => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out)
            .unwrap(),
        _ => body.len(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let compression = match input.byte() % 3 {
        0 => Compression::Zstd {
            level: 1 + i32::from(input.byte() % 3),
        },
        1 => Compression::ZLIB_DEFAULT,
        _ => Compression::None,
    };
    let series_limits = PayloadLimits::SERIES
        .with_max_compressed_bytes(usize::from(input.u16()) + 1)
        .with_max_uncompressed_bytes(usize::from(input.u16()) + 1)
        .with_max_points(usize::from(input.byte()) + 1);
    let limits = PayloadLimits::OTHER
        .with_max_compressed_bytes(usize::from(input.u16()) + 1)
        .with_max_uncompressed_bytes(usize::from(input.u16()) + 1);
    let mut flush = Flush::default();
    for _ in 0..input.byte() % 32 {
        let kind =
            [SeriesKind::Gauge, SeriesKind::Rate, SeriesKind::Count][usize::from(input.byte() % 3)];
        let (name, host) = (input.text(), input.text());
        let tags = (0..input.byte() % 5).map(|_| input.text()).collect();
        let points = (0..input.byte() % 20)
            .map(|_| Point {
                timestamp: i64::from(input.u16()),
                value: f64::from(input.u16()) / 3.0,
            })
            .collect();
        flush.series.push(Series {
            name,
            host,
            tags,
            kind,
            interval: 10,
            points,
        });
    }
    for _ in 0..input.byte() % 8 {
        let (name, host) = (input.text(), input.text());
        let tags = (0..input.byte() % 3).map(|_| input.text()).collect();
        let points = (0..input.byte() % 3)
            .map(|_| {
                let bins = usize::from(input.byte() % 40);
                SketchPoint {
                    timestamp: i64::from(input.u16()),
                    count: i64::from(input.u16()),
                    min: 0.0,
                    max: 1.0,
                    sum: 2.0,
                    avg: 0.5,
                    keys: (0..bins).map(|_| i32::from(input.u16() as i16)).collect(),
                    counts: (0..bins).map(|_| u32::from(input.u16())).collect(),
                }
            })
            .collect();
        flush.sketches.push(Sketch {
            name,
            host,
            tags,
            points,
        });
    }
    let config = SerializerConfig::default()
        .with_compression(compression)
        .with_series_limits(series_limits)
        .with_limits(limits);
    let mut serializer = Serializer::new(config);
    let mut payloads = Vec::new();
    serializer.serialize(&flush, &mut payloads).unwrap();
    let (mut series, mut sketches) = (0, 0);
    for p in &payloads {
        let l = if p.endpoint() == Endpoint::SeriesV2 {
            &series_limits
        } else {
            &limits
        };
        assert!(p.body().len() <= l.max_compressed_bytes());
        assert!(
            decompressed_len(compression, p.body(), l.max_uncompressed_bytes())
                <= l.max_uncompressed_bytes()
        );
        match p.endpoint() {
            Endpoint::SeriesV2 => series += p.item_count() as u64,
            _ => sketches += p.item_count() as u64,
        }
    }
    let stats = serializer.stats();
    assert_eq!(series + stats.series_too_big, flush.series.len() as u64);
    assert_eq!(
        sketches + stats.sketches_too_big,
        flush.sketches.len() as u64
    );
});
