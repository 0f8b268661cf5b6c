//! One streaming compressor per payload, writing into a `Vec<u8>`.

use super::{Compression, SerializeError};
use flate2::write::{GzEncoder, ZlibEncoder};
use std::io::Write;
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective as EndDirective;
use zstd::zstd_safe::{self, CCtx, CParameter, InBuffer, OutBuffer, ResetDirective};

/// A zstd compression context, kept from one payload to the next: setting one up costs more
/// than compressing a small payload.
pub(crate) type ZstdContext = CCtx<'static>;

/// A compressed stream being written.
pub(crate) enum Compressor {
    None(Vec<u8>),
    Zlib(ZlibEncoder<Vec<u8>>),
    Gzip(GzEncoder<Vec<u8>>),
    /// Driven directly: the compressor writes into the body, with no buffer in between.
    Zstd(ZstdContext, Vec<u8>),
}

/// Room made in the body before each call into zstd: a whole compressed block (128 KiB at
/// most, plus headers), so that zstd writes blocks straight into the body.
const ZSTD_MIN_SPARE: usize = (128 << 10) + 512;

impl Compressor {
    /// Starts a stream; `capacity` is a guess of the compressed size.
    pub(crate) fn new(compression: Compression, capacity: usize) -> Result<Self, SerializeError> {
        Compressor::with_context(compression, capacity, &mut None)
    }

    /// Starts a stream, reusing the zstd context in `spare` if there is one.
    pub(crate) fn with_context(
        compression: Compression,
        capacity: usize,
        spare: &mut Option<ZstdContext>,
    ) -> Result<Self, SerializeError> {
        let out = Vec::with_capacity(capacity);
        Ok(match compression {
            Compression::None => Compressor::None(out),
            Compression::Zlib { level } => Compressor::Zlib(ZlibEncoder::new(
                out,
                flate2::Compression::new(level.min(9)),
            )),
            Compression::Gzip { level } => {
                Compressor::Gzip(GzEncoder::new(out, flate2::Compression::new(level.min(9))))
            }
            Compression::Zstd { level } => {
                let mut ctx = match spare.take() {
                    Some(ctx) => ctx,
                    None => CCtx::try_create().ok_or_else(|| SerializeError::Compressor {
                        reason: "cannot allocate a zstd context".to_string(),
                    })?,
                };
                // A stream abandoned after an error leaves a frame behind: drop it.
                ctx.reset(ResetDirective::SessionOnly).map_err(zstd_error)?;
                ctx.set_parameter(CParameter::CompressionLevel(level))
                    .map_err(zstd_error)?;
                // Start the frame now (an empty write): until then a reused context reports the
                // progress of its previous frame, which `zstd_progress` must never return.
                let mut out = out;
                zstd_stream(&mut ctx, &mut out, &[], EndDirective::ZSTD_e_continue)?;
                Compressor::Zstd(ctx, out)
            }
        })
    }

    /// Feeds bytes into the stream.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), SerializeError> {
        match self {
            Compressor::None(out) => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            Compressor::Zlib(z) => z.write_all(bytes).map_err(compressor_error),
            Compressor::Gzip(z) => z.write_all(bytes).map_err(compressor_error),
            Compressor::Zstd(ctx, out) => {
                zstd_stream(ctx, out, bytes, EndDirective::ZSTD_e_continue)
            }
        }
    }

    /// Flushes everything fed so far to the output (a zlib sync flush, a zstd block end), so
    /// that [`output_len`](Self::output_len) accounts for all of it.
    pub(crate) fn flush(&mut self) -> Result<(), SerializeError> {
        match self {
            Compressor::None(_) => Ok(()),
            Compressor::Zlib(z) => z.flush().map_err(compressor_error),
            Compressor::Gzip(z) => z.flush().map_err(compressor_error),
            Compressor::Zstd(ctx, out) => zstd_stream(ctx, out, &[], EndDirective::ZSTD_e_flush),
        }
    }

    /// For zstd, without flushing: the compressed bytes it produced so far (frame header
    /// included), and the input it took but has not compressed yet (less than a block). The
    /// finished frame is at most the first plus the bound of the second and whatever follows.
    pub(crate) fn zstd_progress(&self) -> Option<(usize, usize)> {
        match self {
            Compressor::Zstd(ctx, _) => {
                let p = ctx.get_frame_progression();
                let produced = usize::try_from(p.produced).unwrap_or(usize::MAX);
                let held =
                    usize::try_from(p.ingested.saturating_sub(p.consumed)).unwrap_or(usize::MAX);
                Some((produced, held))
            }
            _ => None,
        }
    }

    /// Bytes of output so far (exact after [`flush`](Self::flush)).
    pub(crate) fn output_len(&self) -> usize {
        match self {
            Compressor::None(out) => out.len(),
            Compressor::Zlib(z) => z.get_ref().len(),
            Compressor::Gzip(z) => z.get_ref().len(),
            Compressor::Zstd(_, out) => out.len(),
        }
    }

    /// Ends the stream and returns the body.
    pub(crate) fn finish(self) -> Result<Vec<u8>, SerializeError> {
        self.finish_into(&mut None)
    }

    /// Ends the stream and returns the body, leaving the zstd context (if any) in `spare` for
    /// the next stream.
    pub(crate) fn finish_into(
        self,
        spare: &mut Option<ZstdContext>,
    ) -> Result<Vec<u8>, SerializeError> {
        match self {
            Compressor::None(out) => Ok(out),
            Compressor::Zlib(z) => z.finish().map_err(compressor_error),
            Compressor::Gzip(z) => z.finish().map_err(compressor_error),
            Compressor::Zstd(mut ctx, mut out) => {
                zstd_stream(&mut ctx, &mut out, &[], EndDirective::ZSTD_e_end)?;
                *spare = Some(ctx);
                Ok(out)
            }
        }
    }
}

/// Feeds `input` to zstd with `op`, growing `out` as needed, until zstd has taken all of it
/// and, for a flush or an end, written out everything it held.
fn zstd_stream(
    ctx: &mut ZstdContext,
    out: &mut Vec<u8>,
    input: &[u8],
    op: EndDirective,
) -> Result<(), SerializeError> {
    let continuing = op == EndDirective::ZSTD_e_continue;
    let mut input = InBuffer::around(input);
    loop {
        if out.capacity() - out.len() < ZSTD_MIN_SPARE {
            out.reserve(ZSTD_MIN_SPARE.max(out.len() / 2));
        }
        let pos = out.len();
        let pending = {
            let mut output = OutBuffer::around_pos(out, pos);
            ctx.compress_stream2(&mut output, &mut input, op)
                .map_err(zstd_error)?
        };
        let consumed = input.pos() == input.src.len();
        if consumed && (continuing || pending == 0) {
            return Ok(());
        }
    }
}

fn zstd_error(code: usize) -> SerializeError {
    SerializeError::Compressor {
        reason: format!("zstd: {}", zstd_safe::get_error_name(code)),
    }
}

fn compressor_error(e: std::io::Error) -> SerializeError {
    SerializeError::Compressor {
        reason: e.to_string(),
    }
}

/// Compresses `bytes` in one go (used by tests and benchmarks as the baseline).
#[doc(hidden)]
pub fn compress_all(compression: Compression, bytes: &[u8]) -> Result<Vec<u8>, SerializeError> {
    let mut c = Compressor::new(compression, bytes.len() / 4)?;
    c.write(bytes)?;
    c.finish()
}

/// Compresses whole buffers one after another, keeping the compression context between them
/// (a zstd context costs about a megabyte to set up, which a batch of a thousand log lines
/// noticed) and the output scratch; each result is an exact-size copy.
#[derive(Default)]
pub(crate) struct BatchCompressor {
    zstd: Option<(i32, zstd::bulk::Compressor<'static>)>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for BatchCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCompressor").finish_non_exhaustive()
    }
}

impl BatchCompressor {
    /// `bytes`, compressed; the same output as [`compress_all`].
    pub(crate) fn compress(
        &mut self,
        compression: Compression,
        bytes: &[u8],
    ) -> Result<Vec<u8>, SerializeError> {
        let Compression::Zstd { level } = compression else {
            return compress_all(compression, bytes);
        };
        let compressor = match &mut self.zstd {
            Some((l, c)) if *l == level => c,
            slot => {
                let c = zstd::bulk::Compressor::new(level).map_err(compressor_error)?;
                &mut slot.insert((level, c)).1
            }
        };
        self.scratch.clear();
        self.scratch
            .reserve(zstd::zstd_safe::compress_bound(bytes.len()));
        compressor
            .compress_to_buffer(bytes, &mut self.scratch)
            .map_err(compressor_error)?;
        Ok(self.scratch.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_reused_context_compresses_each_buffer_on_its_own() {
        let mut c = BatchCompressor::default();
        for (i, data) in [b"abc".repeat(1000), Vec::new(), b"xyz".repeat(10)]
            .into_iter()
            .enumerate()
        {
            for compression in [Compression::default(), Compression::Zstd { level: 3 }] {
                let out = c.compress(compression, &data).unwrap();
                assert_eq!(zstd::decode_all(&out[..]).unwrap(), data, "buffer {i}");
                assert_eq!(out.capacity(), out.len());
            }
        }
        let gz = c.compress(Compression::GZIP_DEFAULT, b"hello").unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn zlib_output_is_an_rfc_1950_stream_and_zstd_a_frame() {
        let data = b"hello hello hello hello".repeat(100);
        let z = compress_all(Compression::ZLIB_DEFAULT, &data).unwrap();
        assert_eq!(z[0] & 0x0f, 8, "CM = deflate");
        assert_eq!(((z[0] as u16) << 8 | z[1] as u16) % 31, 0, "FCHECK");
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let s = compress_all(Compression::default(), &data).unwrap();
        assert_eq!(&s[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zstd::decode_all(&s[..]).unwrap(), data);
    }

    /// `len` pseudo-random (incompressible) bytes, the same for the same `seed`.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        let mut noise = vec![0u8; len];
        for b in noise.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        noise
    }

    #[test]
    fn bound_holds_for_incompressible_data_written_after_a_flush() {
        let noise = noise(300_000, 0x9e37_79b9_7f4a_7c15);
        for compression in [
            Compression::ZLIB_DEFAULT,
            Compression::GZIP_DEFAULT,
            Compression::default(),
            Compression::None,
        ] {
            for split in [0usize, 1, 1000, 131_072, 200_000] {
                let mut c = Compressor::new(compression, 0).unwrap();
                c.write(&noise[..split]).unwrap();
                c.flush().unwrap();
                let base = c.output_len();
                let rest = &noise[split..];
                c.write(rest).unwrap();
                let total = c.finish().unwrap().len();
                assert!(
                    total <= base + compression.bound(rest.len()),
                    "{compression:?} {split}"
                );
            }
        }
    }

    #[test]
    fn zstd_progress_bounds_the_rest_of_an_unflushed_frame() {
        let noise = noise(700_000, 0x2545_f491_4f6c_dd1d);
        // Half text-like (compressible), half noise: zstd's blocks then vary in size.
        let text: Vec<u8> = (0..700_000u32)
            .flat_map(|i| format!("metric.{}:{}|g|#env:prod\n", i % 977, i % 13).into_bytes())
            .take(700_000)
            .collect();
        for data in [&noise, &text] {
            for split in [0usize, 1, 1000, 131_071, 131_072, 200_000, 650_000] {
                for rest_len in [0usize, 10, 50_000] {
                    let mut c = Compressor::new(Compression::default(), 0).unwrap();
                    c.write(&data[..split]).unwrap();
                    let (produced, held) = c.zstd_progress().unwrap();
                    assert!(held <= split && held < 128 << 10, "{split}: held {held}");
                    assert!(produced >= c.output_len());
                    let rest = &data[split..split + rest_len];
                    c.write(rest).unwrap();
                    let total = c.finish().unwrap().len();
                    assert!(
                        total <= produced + Compression::default().bound(held + rest.len()),
                        "{split} {rest_len}: {total} > {produced} + bound({held} + {rest_len})"
                    );
                }
            }
        }
        // A reused context reports the new frame from the start, not the one it finished.
        let mut spare = None;
        let mut c = Compressor::with_context(Compression::default(), 0, &mut spare).unwrap();
        c.write(&text[..300_000]).unwrap();
        assert!(!c.finish_into(&mut spare).unwrap().is_empty());
        assert!(spare.is_some());
        let c = Compressor::with_context(Compression::default(), 0, &mut spare).unwrap();
        assert_eq!(c.zstd_progress(), Some((0, 0)));
        assert_eq!(
            Compressor::new(Compression::ZLIB_DEFAULT, 0)
                .unwrap()
                .zstd_progress(),
            None
        );
    }
}
