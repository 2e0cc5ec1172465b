package io.choir.server.security;

import java.nio.ByteBuffer;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * SealedRecords carry the bytes of a peer TCP connection after its {@link PeerHandshake}: each record
 * is a 4-byte big-endian length n, then n bytes of AES-256-GCM ciphertext and tag of up to {@link
 * #MAX_PLAINTEXT_BYTES} plaintext bytes. The length is the associated data, so it cannot be changed
 * without the tag failing. The nonce is the record's number in its direction (a counter from 0, never
 * sent), and each direction of each connection has its own key (derived by the handshake), so a
 * record that is altered, dropped, reordered, replayed, or moved from another connection or the other
 * direction fails to open: the connection is then closed, never read further.
 *
 * <p>The bytes inside are whatever the connection carries (length-prefixed PeerEnvelope frames); a
 * frame longer than one record spans several. Pure: no I/O; one connection's loop owns each object.
 */
public final class SealedRecords {
  public static final int LENGTH_BYTES = 4;
  public static final int TAG_BYTES = 16;
  /**
   * Plaintext bytes per record at most: the opener buffers one whole record before its tag can be
   * checked, so this bounds what a connection holds unauthenticated. 16 KiB (as TLS): the per-record
   * overhead is 20 bytes (0.12%) and one cipher init, and records this small reach the JIT's AES-GCM
   * intrinsics soon (measured on JDK 17: 32 MiB in 64 KiB records still ran at 10-34 MiB/s, in 16 KiB
   * records at about 1 GiB/s from the second 32 MiB on); see also {@link #warmUp}.
   */
  public static final int MAX_PLAINTEXT_BYTES = 16 << 10;
  /** Largest ciphertext (with tag) a record may announce. */
  public static final int MAX_CIPHERTEXT_BYTES = MAX_PLAINTEXT_BYTES + TAG_BYTES;
  /**
   * Records per direction of one connection at most (then it must be replaced by a new connection
   * and handshake): far below the 2^64 nonces a counter allows, and below GCM's limits per key.
   */
  public static final long MAX_RECORDS = 1L << 32;

  private static final int TAG_BITS = TAG_BYTES * 8;
  private static final int NONCE_BYTES = 12;

  private SealedRecords() {}

  /** The bytes plaintextBytes of plaintext take once sealed into records of at most the maximum. */
  public static long sealedBytes(long plaintextBytes) {
    long records = (plaintextBytes + MAX_PLAINTEXT_BYTES - 1) / MAX_PLAINTEXT_BYTES;
    return plaintextBytes + records * (LENGTH_BYTES + TAG_BYTES);
  }

  /** BadRecordException: a record that must not be read (the connection is closed). */
  public static final class BadRecordException extends Exception {
    public BadRecordException(String message) {
      super(message);
    }
  }

  /** Sealer seals one direction's records, numbering them. */
  public static final class Sealer {
    private final SecretKey key;
    private final Cipher cipher;
    private long next;

    Sealer(byte[] key) {
      this.key = new SecretKeySpec(key, "AES");
      this.cipher = gcm();
    }

    /**
     * Seals plaintext's remaining bytes (1 to {@link #MAX_PLAINTEXT_BYTES}) as the next record into
     * out (which needs {@code LENGTH_BYTES + remaining + TAG_BYTES} bytes free); consumes plaintext.
     */
    public void seal(ByteBuffer plaintext, ByteBuffer out) {
      int n = plaintext.remaining();
      byte[] in = new byte[n];
      plaintext.get(in);
      byte[] record = new byte[LENGTH_BYTES + n + TAG_BYTES];
      seal(in, 0, n, record, 0);
      out.put(record);
    }

    /**
     * Seals in[off, off + len) (1 to {@link #MAX_PLAINTEXT_BYTES} bytes) as the next record, written
     * at out[outOff] ({@code LENGTH_BYTES + len + TAG_BYTES} bytes). The array form is the fast one:
     * the JDK's AES-GCM intrinsics work on arrays.
     */
    public void seal(byte[] in, int off, int len, byte[] out, int outOff) {
      if (len < 1 || len > MAX_PLAINTEXT_BYTES) {
        throw new IllegalArgumentException("a record holds 1 to " + MAX_PLAINTEXT_BYTES + " bytes, not " + len);
      }
      if (next >= MAX_RECORDS) {
        throw new IllegalStateException("this connection sealed " + MAX_RECORDS + " records: reconnect");
      }
      int length = len + TAG_BYTES;
      byte[] header = header(length);
      try {
        cipher.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce(next)));
        cipher.updateAAD(header);
        System.arraycopy(header, 0, out, outOff, LENGTH_BYTES);
        int written = cipher.doFinal(in, off, len, out, outOff + LENGTH_BYTES);
        if (written != length) {
          throw new IllegalStateException("sealed " + written + " bytes, expected " + length);
        }
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("AES-GCM failed to seal", e);
      }
      next++;
    }

    /** Records sealed so far. */
    public long records() {
      return next;
    }
  }

  /** Opener opens the other direction's records, in order, and refuses any other. */
  public static final class Opener {
    private final SecretKey key;
    private final Cipher cipher;
    private long next;

    Opener(byte[] key) {
      this.key = new SecretKeySpec(key, "AES");
      this.cipher = gcm();
    }

    /**
     * The ciphertext length a record's header announces, checked (at least one plaintext byte, at most
     * {@link #MAX_CIPHERTEXT_BYTES}) before any of it is buffered.
     */
    public int ciphertextBytes(int header) throws BadRecordException {
      if (header < TAG_BYTES + 1 || header > MAX_CIPHERTEXT_BYTES) {
        throw new BadRecordException("a record of " + header + " bytes (1 to " + MAX_PLAINTEXT_BYTES
            + " plaintext bytes and a " + TAG_BYTES + "-byte tag expected)");
      }
      return header;
    }

    /**
     * Opens the next record: its header (as read) and its ciphertext (the remaining bytes, exactly
     * the announced length); writes the plaintext (length - TAG_BYTES bytes) into out. A record that
     * is not the next one sealed with the other side's key throws BadRecordException.
     */
    public void open(int header, ByteBuffer ciphertext, ByteBuffer out) throws BadRecordException {
      ciphertextBytes(header);
      if (ciphertext.remaining() != header) {
        throw new BadRecordException("a record of " + ciphertext.remaining() + " bytes, its header says " + header);
      }
      byte[] in = new byte[header];
      ciphertext.get(in);
      byte[] plain = new byte[header - TAG_BYTES];
      open(header, in, 0, plain, 0);
      out.put(plain);
    }

    /**
     * Opens the next record, whose header is header and whose ciphertext (header bytes) is at
     * in[off]; writes the plaintext (header - TAG_BYTES bytes) at out[outOff]. A record that is not
     * the next one sealed with the other side's key throws BadRecordException.
     */
    public void open(int header, byte[] in, int off, byte[] out, int outOff) throws BadRecordException {
      ciphertextBytes(header);
      if (next >= MAX_RECORDS) {
        throw new BadRecordException("more than " + MAX_RECORDS + " records on one connection");
      }
      try {
        cipher.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(TAG_BITS, nonce(next)));
        cipher.updateAAD(header(header));
        cipher.doFinal(in, off, header, out, outOff);
      } catch (AEADBadTagException e) {
        throw new BadRecordException("record " + next + " does not open: altered, reordered, replayed or not"
            + " sealed with this connection's key");
      } catch (GeneralSecurityException e) {
        throw new BadRecordException("record " + next + " does not open: " + e.getMessage());
      }
      next++;
    }

    /** Records opened so far. */
    public long records() {
      return next;
    }
  }

  /**
   * Seals and opens small records under a throwaway key, so that the JIT compiles AES-GCM
   * with its intrinsics before the first real state transfer needs them (a cold JVM seals large
   * records in the interpreter's and C1's code at a few tens of MiB/s; after 20,000 small records,
   * at GiB/s). Costs a few hundred ms of one core, once per process; run it off the hot path.
   */
  public static void warmUp(int records) {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    Sealer sealer = new Sealer(key);
    Opener opener = new Opener(key);
    byte[] plain = new byte[64];
    byte[] sealed = new byte[LENGTH_BYTES + plain.length + TAG_BYTES];
    byte[] back = new byte[plain.length];
    for (int i = 0; i < records; i++) {
      sealer.seal(plain, 0, plain.length, sealed, 0);
      try {
        opener.open(plain.length + TAG_BYTES, sealed, LENGTH_BYTES, back, 0);
      } catch (BadRecordException e) {
        throw new IllegalStateException("a record sealed here does not open", e);
      }
    }
  }

  private static Cipher gcm() {
    try {
      return Cipher.getInstance("AES/GCM/NoPadding");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES/GCM/NoPadding is part of every JDK", e);
    }
  }

  private static byte[] header(int length) {
    return new byte[] {(byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length};
  }

  /** Record number n's nonce: 4 zero bytes, then n (each direction has its own key). */
  private static byte[] nonce(long n) {
    byte[] iv = new byte[NONCE_BYTES];
    for (int i = 0; i < 8; i++) {
      iv[NONCE_BYTES - 1 - i] = (byte) (n >>> (8 * i));
    }
    return iv;
  }
}
