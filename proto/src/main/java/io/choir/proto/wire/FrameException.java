package io.choir.proto.wire;

import io.netty.handler.codec.DecoderException;

/**
 * FrameException reports a client frame that cannot be accepted: too large for the configured limit, or
 * not a valid message. The connection that sent it is answered (when possible) and closed, because the
 * byte stream can no longer be trusted to be aligned on frame boundaries.
 */
public final class FrameException extends DecoderException {
  private static final long serialVersionUID = 1L;

  /** Why a frame was refused. */
  public enum Kind {
    /** The length prefix exceeds the maximum frame size. */
    TOO_LARGE,
    /** The length prefix is negative, or the body does not parse. */
    MALFORMED
  }

  private final Kind kind;

  public FrameException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public FrameException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }
}
