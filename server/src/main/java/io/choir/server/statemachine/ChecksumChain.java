package io.choir.server.statemachine;

import com.google.protobuf.ByteString;
import io.choir.server.storage.Bytes;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * ChecksumChain is the applied state's running checksum: checksum(n) = first 8 bytes (big-endian
 * long) of SHA-256(checksum(n-1) as 8 bytes || the bytes of entry n as stored in the log), and
 * checksum(0) = 0, so that equal checksums at an op mean equal logs up to it on every replica. Exactly
 * the bytes given are hashed. An instance owns one SHA-256 digest, for one thread (the apply lane).
 */
final class ChecksumChain {
  private final MessageDigest sha256 = newSha256();

  /** The checksum after an entry stored as entryBytes, at a state whose checksum is previous. */
  long next(long previous, ByteString entryBytes) {
    return next(sha256, previous, entryBytes);
  }

  /** {@link #next} with a digest of its own, for any thread. */
  static long nextOnce(long previous, ByteString entryBytes) {
    return next(newSha256(), previous, entryBytes);
  }

  private static long next(MessageDigest digest, long previous, ByteString entryBytes) {
    digest.reset();
    digest.update(Bytes.longToBytes(previous));
    for (ByteBuffer piece : entryBytes.asReadOnlyByteBufferList()) {
      digest.update(piece);
    }
    return Bytes.getLong(digest.digest(), 0);
  }

  private static MessageDigest newSha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      // Every Java platform must provide SHA-256 (MessageDigest's Javadoc).
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }
}
