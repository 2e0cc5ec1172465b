package io.choir.server.statemachine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.google.protobuf.ByteString;
import io.choir.server.storage.Bytes;
import java.security.MessageDigest;
import org.junit.jupiter.api.Test;

/** ChecksumChainTest checks the checksum rule of the applied state that every replica computes. */
class ChecksumChainTest {
  @Test
  void shouldHashThePreviousChecksumThenTheStoredBytes() throws Exception {
    ByteString entry = ByteString.copyFromUtf8("entry bytes");
    MessageDigest sha256 = MessageDigest.getInstance("SHA-256");
    sha256.update(Bytes.longToBytes(42));
    sha256.update(entry.toByteArray());
    long expected = Bytes.getLong(sha256.digest(), 0);

    assertEquals(expected, new ChecksumChain().next(42, entry));
    assertEquals(expected, ChecksumChain.nextOnce(42, entry));
  }

  @Test
  void shouldGiveTheSameChainWhateverTheDigestInstanceAndTheOrderOfCalls() {
    ChecksumChain chain = new ChecksumChain();
    ByteString a = ByteString.copyFromUtf8("a");
    ByteString b = ByteString.copyFromUtf8("b");
    long reused = chain.next(chain.next(0, a), b);

    assertEquals(ChecksumChain.nextOnce(ChecksumChain.nextOnce(0, a), b), reused);
    assertNotEquals(ChecksumChain.nextOnce(ChecksumChain.nextOnce(0, b), a), reused,
        "the chain depends on the order of the entries");
  }

  @Test
  void shouldHashARopeLikeItsFlatBytes() {
    ByteString rope = ByteString.copyFromUtf8("first half, ").concat(ByteString.copyFromUtf8("second"));

    assertEquals(
        ChecksumChain.nextOnce(7, ByteString.copyFrom(rope.toByteArray())),
        ChecksumChain.nextOnce(7, rope));
  }
}
