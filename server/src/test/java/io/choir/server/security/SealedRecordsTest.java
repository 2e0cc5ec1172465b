package io.choir.server.security;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.choir.server.security.PeerHandshake.Members;
import io.choir.server.security.PeerHandshake.SessionKeys;
import io.choir.server.security.SealedRecords.BadRecordException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The sealed records of a peer TCP connection: what opens, and every record that must not. */
class SealedRecordsTest {
  private final Random random = new Random(11);

  /** The two sides' keys of one fresh handshake (connector first). */
  private SessionKeys[] connection() {
    Members m1 = new Members(1, 5, Set.of(1, 2));
    Members m2 = new Members(2, 5, Set.of(1, 2));
    PeerHandshake c = PeerHandshake.connect(PeerHandshakeTest.KEY, m1, 2, nonce());
    PeerHandshake a = PeerHandshake.accept(PeerHandshakeTest.KEY, m2, nonce());
    a.receive(ByteBuffer.wrap(c.pollOutput()));
    c.receive(ByteBuffer.wrap(a.pollOutput()));
    a.receive(ByteBuffer.wrap(c.pollOutput()));
    return new SessionKeys[] {c.sessionKeys(), a.sessionKeys()};
  }

  private byte[] nonce() {
    byte[] n = new byte[PeerHandshake.NONCE_BYTES];
    random.nextBytes(n);
    return n;
  }

  private static byte[] seal(SealedRecords.Sealer sealer, byte[] plain) {
    ByteBuffer out = ByteBuffer.allocate(SealedRecords.LENGTH_BYTES + plain.length + SealedRecords.TAG_BYTES);
    sealer.seal(ByteBuffer.wrap(plain), out);
    return out.array();
  }

  private static byte[] open(SealedRecords.Opener opener, byte[] record) throws BadRecordException {
    ByteBuffer in = ByteBuffer.wrap(record);
    int header = in.getInt();
    ByteBuffer out = ByteBuffer.allocate(Math.max(0, record.length - SealedRecords.LENGTH_BYTES
        - SealedRecords.TAG_BYTES));
    opener.open(header, in, out);
    return out.array();
  }

  private byte[] bytes(int n) {
    byte[] b = new byte[n];
    random.nextBytes(b);
    return b;
  }

  @Test
  void shouldOpenEveryRecordInOrderWhateverItsSize() throws Exception {
    SessionKeys[] keys = connection();
    for (int size : new int[] {1, 2, 100, 4096, SealedRecords.MAX_PLAINTEXT_BYTES - 1, SealedRecords.MAX_PLAINTEXT_BYTES}) {
      byte[] plain = bytes(size);
      assertArrayEquals(plain, open(keys[1].opener(), seal(keys[0].sealer(), plain)));
      assertArrayEquals(plain, open(keys[0].opener(), seal(keys[1].sealer(), plain)));
    }
    assertEquals(6, keys[0].sealer().records());
    assertEquals(6, keys[1].opener().records());
    assertEquals(100 + 20, SealedRecords.sealedBytes(100));
    assertEquals((1 << 20) + (1 << 20) / SealedRecords.MAX_PLAINTEXT_BYTES * 20, SealedRecords.sealedBytes(1 << 20));
  }

  @Test
  void shouldRefuseARecordWithAnyByteAltered() throws Exception {
    long seed = System.nanoTime();
    System.out.println("SealedRecordsTest seed " + seed);
    Random r = new Random(seed);
    byte[] plain = bytes(300);
    for (int at = 0; at < SealedRecords.LENGTH_BYTES + plain.length + SealedRecords.TAG_BYTES; at++) {
      SessionKeys[] keys = connection();
      byte[] record = seal(keys[0].sealer(), plain);
      record[at] ^= (byte) (1 + r.nextInt(255));
      SealedRecords.Opener opener = keys[1].opener();
      int i = at;
      assertThrows(BadRecordException.class, () -> open(opener, record), "byte " + i + " altered, seed " + seed);
    }
  }

  @Test
  void shouldRefuseAReorderedAReplayedOrADroppedRecord() throws Exception {
    SessionKeys[] keys = connection();
    List<byte[]> records = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      records.add(seal(keys[0].sealer(), ("frame " + i).getBytes()));
    }
    // Reordered: the second before the first.
    assertThrows(BadRecordException.class, () -> open(keys[1].opener(), records.get(1)));

    SessionKeys[] fresh = connection();
    List<byte[]> more = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      more.add(seal(fresh[0].sealer(), ("frame " + i).getBytes()));
    }
    assertArrayEquals("frame 0".getBytes(), open(fresh[1].opener(), more.get(0)));
    // Replayed: the first again.
    assertThrows(BadRecordException.class, () -> open(fresh[1].opener(), more.get(0)));

    SessionKeys[] third = connection();
    byte[] first = seal(third[0].sealer(), "frame 0".getBytes());
    seal(third[0].sealer(), "frame 1".getBytes()); // dropped by an attacker
    byte[] last = seal(third[0].sealer(), "frame 2".getBytes());
    open(third[1].opener(), first);
    assertThrows(BadRecordException.class, () -> open(third[1].opener(), last));
  }

  @Test
  void shouldRefuseARecordFromAnotherConnectionOrReflectedFromTheOtherDirection() throws Exception {
    SessionKeys[] one = connection();
    SessionKeys[] two = connection(); // same cluster key, other nonces
    byte[] spliced = seal(one[0].sealer(), "from another connection".getBytes());
    assertThrows(BadRecordException.class, () -> open(two[1].opener(), spliced));
    // The connector's own record sent back to it (the other direction's key).
    byte[] reflected = seal(two[0].sealer(), "reflected".getBytes());
    assertThrows(BadRecordException.class, () -> open(two[0].opener(), reflected));
  }

  @Test
  void shouldRefuseATruncatedRecordAndALengthBeyondTheMaximumBeforeReadingIt() throws Exception {
    SessionKeys[] keys = connection();
    byte[] record = seal(keys[0].sealer(), bytes(50));
    byte[] truncated = Arrays.copyOf(record, record.length - 1);
    assertThrows(BadRecordException.class, () -> open(keys[1].opener(), truncated));
    SealedRecords.Opener opener = keys[1].opener();
    assertThrows(BadRecordException.class, () -> opener.ciphertextBytes(SealedRecords.MAX_CIPHERTEXT_BYTES + 1));
    assertThrows(BadRecordException.class, () -> opener.ciphertextBytes(Integer.MIN_VALUE));
    assertThrows(BadRecordException.class, () -> opener.ciphertextBytes(SealedRecords.TAG_BYTES));
    assertEquals(SealedRecords.MAX_CIPHERTEXT_BYTES, opener.ciphertextBytes(SealedRecords.MAX_CIPHERTEXT_BYTES));
  }

  @Test
  void shouldNotSealAnEmptyOrOversizedRecord() {
    SessionKeys[] keys = connection();
    ByteBuffer out = ByteBuffer.allocate(SealedRecords.MAX_CIPHERTEXT_BYTES + 100);
    assertThrows(IllegalArgumentException.class, () -> keys[0].sealer().seal(ByteBuffer.allocate(0), out));
    assertThrows(IllegalArgumentException.class,
        () -> keys[0].sealer().seal(ByteBuffer.allocate(SealedRecords.MAX_PLAINTEXT_BYTES + 1), out));
  }
}
