package io.choir.server.security;

import io.choir.proto.wire.DatagramHeader;
import java.security.GeneralSecurityException;
import java.util.HashMap;
import java.util.Map;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * DatagramSealer seals and opens datagram bodies with AES-GCM (the JDK's "AES/GCM/NoPadding", 128-bit
 * tag) under the datagram sub-key of each cluster key ({@link ClusterKeys#DATAGRAM_PURPOSE}); the
 * header's first {@link DatagramHeader#AUTHENTICATED_BYTES} bytes are the associated data, so a
 * changed header field (type, view, sender, epoch, counter, key id) fails the tag like a changed body.
 * The caller gives the 12-byte nonce and guarantees it never repeats for a key ({@link DatagramCodec}).
 *
 * <p>The sub-keys are derived once and a Cipher is kept per key id (one for sealing with the sending
 * key, one for opening per accepted key); each is used under its own lock, since a Cipher is not
 * thread-safe and datagrams are sent from several threads.
 */
public final class DatagramSealer {
  /** Bytes of the GCM tag after the ciphertext. */
  public static final int TAG_BYTES = 16;
  /** Bytes of a GCM nonce. */
  public static final int NONCE_BYTES = 12;
  private static final String TRANSFORMATION = "AES/GCM/NoPadding";

  private final int sendingKeyId;
  private final SecretKey sendingKey;
  private final Cipher sealer;
  private final Map<Integer, SecretKey> openKeys = new HashMap<>();
  private final Map<Integer, Cipher> openers = new HashMap<>();

  public DatagramSealer(ClusterKeys keys) {
    this.sendingKeyId = keys.sendingKeyId();
    this.sendingKey = keys.aesKey(sendingKeyId, ClusterKeys.DATAGRAM_PURPOSE);
    try {
      this.sealer = Cipher.getInstance(TRANSFORMATION);
      for (int id : keys.keyIds()) {
        openKeys.put(id, keys.aesKey(id, ClusterKeys.DATAGRAM_PURPOSE));
        openers.put(id, Cipher.getInstance(TRANSFORMATION));
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(TRANSFORMATION + " is part of every JDK", e);
    }
  }

  /** The key id this replica seals with. */
  public int sendingKeyId() {
    return sendingKeyId;
  }

  /** True when keyId names a key this replica accepts. */
  public boolean accepts(int keyId) {
    return openKeys.containsKey(keyId);
  }

  /**
   * Seals body into out[SIZE..SIZE + body.length + TAG_BYTES) with the sending key, out[0..SIZE) being
   * the header already written (its authenticated bytes are the associated data).
   */
  public void seal(byte[] nonce, byte[] out, byte[] body) {
    synchronized (sealer) {
      try {
        sealer.init(Cipher.ENCRYPT_MODE, sendingKey, new GCMParameterSpec(TAG_BYTES * 8, nonce));
        sealer.updateAAD(out, 0, DatagramHeader.AUTHENTICATED_BYTES);
        sealer.doFinal(body, 0, body.length, out, DatagramHeader.SIZE);
      } catch (GeneralSecurityException e) {
        // Only a repeated nonce (the JDK refuses one) or a broken JDK: never a datagram's fault.
        throw new IllegalStateException("AES-GCM sealing failed", e);
      }
    }
  }

  /**
   * Opens datagram[0..length) sealed with key keyId; returns the body, or null when the tag does not
   * match (a forgery, another key with the same id, or corruption the checksum missed).
   */
  public byte[] open(int keyId, byte[] nonce, byte[] datagram, int length) {
    Cipher opener = openers.get(keyId);
    if (opener == null || length < DatagramHeader.SIZE + TAG_BYTES) {
      return null;
    }
    synchronized (opener) {
      try {
        opener.init(Cipher.DECRYPT_MODE, openKeys.get(keyId), new GCMParameterSpec(TAG_BYTES * 8, nonce));
        opener.updateAAD(datagram, 0, DatagramHeader.AUTHENTICATED_BYTES);
        return opener.doFinal(datagram, DatagramHeader.SIZE, length - DatagramHeader.SIZE);
      } catch (AEADBadTagException e) {
        return null;
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("AES-GCM opening failed", e);
      }
    }
  }
}
