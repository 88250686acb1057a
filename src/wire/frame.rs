//! Kafka's framing: a 4-byte big-endian size, then that many bytes.
//!
//! A frame is read in steps as its bytes arrive, so a peer that announces a huge size and sends
//! nothing costs no memory; the announced size is checked against a limit before anything else.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read. The connection is unusable after any of these.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The size prefix is negative: the peer does not speak Kafka.
    #[error("received a negative frame size ({0}): the peer is not a Kafka broker or the stream is corrupt")]
    NegativeSize(i32),
    /// The size prefix is over the limit.
    #[error("received a frame of {size} bytes, over the {max}-byte limit")]
    TooLarge { size: i64, max: usize },
    /// The stream ended inside a frame.
    #[error("the peer closed the connection in the middle of a frame ({got} of {expected} bytes)")]
    Truncated { expected: usize, got: usize },
    #[error("read failed: {0}")]
    Io(#[source] std::io::Error),
}

/// Step size for growing the buffer of a large frame.
const CHUNK: usize = 64 * 1024;

/// Reads one frame. `Ok(None)` means the peer closed the connection cleanly between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size_buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut size_buf[got..]).await.map_err(FrameError::Io)?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated { expected: 4, got })
            };
        }
        got += n;
    }
    let size = i32::from_be_bytes(size_buf);
    if size < 0 {
        return Err(FrameError::NegativeSize(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge {
            size: size as i64,
            max,
        });
    }
    let mut buf = BytesMut::with_capacity(size.min(CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(CHUNK);
        buf.reserve(want);
        let n = (&mut *r)
            .take(want as u64)
            .read_buf(&mut buf)
            .await
            .map_err(FrameError::Io)?;
        if n == 0 {
            return Err(FrameError::Truncated {
                expected: size,
                got: buf.len(),
            });
        }
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8], max: usize) -> Result<Option<Bytes>, FrameError> {
        let mut r = bytes;
        read_frame(&mut r, max).await
    }

    #[tokio::test]
    async fn frames_table() {
        // (input, max, expected: Ok(Some(body)) / Ok(None) / Err(kind))
        assert_eq!(read(&[], 10).await.unwrap(), None);
        assert_eq!(
            read(&[0, 0, 0, 3, 1, 2, 3], 10).await.unwrap().unwrap(),
            Bytes::from_static(&[1, 2, 3])
        );
        assert_eq!(read(&[0, 0, 0, 0], 10).await.unwrap().unwrap().len(), 0);
        assert!(matches!(
            read(&[0xff, 0xff, 0xff, 0xfe], 10).await,
            Err(FrameError::NegativeSize(-2))
        ));
        assert!(matches!(
            read(&[0, 0, 0, 11], 10).await,
            Err(FrameError::TooLarge { size: 11, max: 10 })
        ));
        assert!(matches!(
            read(&[0, 0], 10).await,
            Err(FrameError::Truncated {
                expected: 4,
                got: 2
            })
        ));
        assert!(matches!(
            read(&[0, 0, 0, 5, 1, 2], 10).await,
            Err(FrameError::Truncated {
                expected: 5,
                got: 2
            })
        ));
    }

    #[tokio::test]
    async fn a_large_claim_with_few_bytes_allocates_little() {
        // 0x7fffffff announced, 3 bytes sent: must fail as truncated without a 2 GiB buffer.
        let r = read(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3], usize::MAX).await;
        assert!(matches!(r, Err(FrameError::Truncated { got: 3, .. })));
    }
}
