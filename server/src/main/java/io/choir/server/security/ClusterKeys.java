package io.choir.server.security;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.SecretKey;
import javax.crypto.spec.SecretKeySpec;

/**
 * ClusterKeys are the cluster's shared secret keys, read from {@code cluster_key_file}. Every member
 * holds the same file. It names one or two keys, each with a key id (1..255) that travels in the
 * clear with what the key protects, so a receiver knows which key to try:
 *
 * <pre>
 *   # comments and blank lines are ignored
 *   1 3q2+7w...   (key id, then 32 random bytes in base64)
 *   2 Zm9v...     (optional: a second key, accepted but not used to send)
 * </pre>
 *
 * The first key is the one this replica sends with; every key in the file is accepted. Rotation with
 * no downtime is three rewrites of the file on every member, each followed by a restart of each
 * member in turn: add the new key as the second line (everyone accepts it); swap the lines (everyone
 * sends with it, and still accepts the old one from members not yet restarted); remove the old line.
 *
 * <p>A key is never used directly: {@link #derive} gives one sub-key per purpose (sealing datagrams,
 * proving a peer stream), so a weakness of one use cannot be carried to another (RFC 5869's HKDF
 * expand step with a single block, HMAC-SHA256 of the purpose label and 0x01).
 *
 * <p>The file must not be readable by group or others (as ssh does for private keys): a key any
 * local user can read protects nothing.
 */
public final class ClusterKeys {
  /** Bytes of a key: AES-256. */
  public static final int KEY_BYTES = 32;
  /** Most keys in one file: the sending key and one more during a rotation. */
  public static final int MAX_KEYS = 2;
  /** Purpose label of the datagram-sealing sub-key. */
  public static final String DATAGRAM_PURPOSE = "choir datagram seal v1";
  /** Purpose label of the peer-stream handshake sub-key. */
  public static final String PEER_STREAM_PURPOSE = "choir peer stream v1";

  private final Map<Integer, byte[]> keys; // key id -> master key, in file order
  private final int sendingKeyId;

  private ClusterKeys(Map<Integer, byte[]> keys) {
    if (keys.isEmpty() || keys.size() > MAX_KEYS) {
      throw new IllegalArgumentException("a key file holds 1 or " + MAX_KEYS + " keys, not " + keys.size());
    }
    this.keys = keys;
    this.sendingKeyId = keys.keySet().iterator().next();
  }

  /** Keys given in memory, the first one sending (for tests and tools). */
  public static ClusterKeys of(Map<Integer, byte[]> keysInOrder) {
    Map<Integer, byte[]> copy = new LinkedHashMap<>();
    keysInOrder.forEach((id, key) -> {
      checkId(id);
      if (key.length != KEY_BYTES) {
        throw new IllegalArgumentException("key " + id + " has " + key.length + " bytes, not " + KEY_BYTES);
      }
      copy.put(id, key.clone());
    });
    return new ClusterKeys(copy);
  }

  /** One fresh random key with the given id. */
  public static ClusterKeys generate(int keyId, SecureRandom random) {
    byte[] key = new byte[KEY_BYTES];
    random.nextBytes(key);
    return of(Map.of(keyId, key));
  }

  /**
   * Reads a key file; throws IllegalArgumentException saying what is wrong with it (unreadable,
   * readable by others, malformed line, wrong key length, repeated id, no key or too many).
   */
  public static ClusterKeys load(Path file) {
    if (!Files.isReadable(file)) {
      throw new IllegalArgumentException("cluster key file " + file + " does not exist or is not readable");
    }
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
      for (PosixFilePermission p : perms) {
        if (p.name().startsWith("GROUP_") || p.name().startsWith("OTHERS_")) {
          throw new IllegalArgumentException("cluster key file " + file + " is accessible by group or others ("
              + PosixFilePermissions.toString(perms) + "): chmod 600 it");
        }
      }
    } catch (UnsupportedOperationException notPosix) {
      // not a POSIX file system: nothing to check
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read the permissions of " + file + ": " + e.getMessage());
    }
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read cluster key file " + file + ": " + e.getMessage());
    }
    return parse(lines, file.toString());
  }

  /** Parses the lines of a key file; where names the file in errors. */
  public static ClusterKeys parse(List<String> lines, String where) {
    Map<Integer, byte[]> keys = new LinkedHashMap<>();
    for (int n = 0; n < lines.size(); n++) {
      String line = lines.get(n).strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      String[] parts = line.split("\\s+");
      String at = where + " line " + (n + 1);
      if (parts.length != 2) {
        throw new IllegalArgumentException(at + ": expected '<key id> <base64 key>'");
      }
      int id;
      byte[] key;
      try {
        id = Integer.parseInt(parts[0]);
        key = Base64.getDecoder().decode(parts[1]);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(at + ": expected '<key id> <base64 key>' (" + e.getMessage() + ")");
      }
      try {
        checkId(id);
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(at + ": " + e.getMessage());
      }
      if (key.length != KEY_BYTES) {
        throw new IllegalArgumentException(at + ": a key is " + KEY_BYTES + " bytes, this one " + key.length);
      }
      if (keys.put(id, key) != null) {
        throw new IllegalArgumentException(at + ": key id " + id + " appears twice");
      }
    }
    if (keys.isEmpty()) {
      throw new IllegalArgumentException(where + " holds no key");
    }
    if (keys.size() > MAX_KEYS) {
      throw new IllegalArgumentException(where + " holds " + keys.size() + " keys; at most " + MAX_KEYS
          + " (the sending key and the one being rotated in or out)");
    }
    return new ClusterKeys(keys);
  }

  private static void checkId(int id) {
    if (id < 1 || id > 255) {
      throw new IllegalArgumentException("key id must be 1..255, got " + id);
    }
  }

  /** The id of the key this replica sends with (the first of the file). */
  public int sendingKeyId() {
    return sendingKeyId;
  }

  /** The ids of every accepted key, sending key first. */
  public List<Integer> keyIds() {
    return new ArrayList<>(keys.keySet());
  }

  /** True when id names a key of this file. */
  public boolean accepts(int keyId) {
    return keys.containsKey(keyId);
  }

  /**
   * The sub-key of key keyId for purpose (32 bytes), or null when the file has no such key. The
   * caller caches what it derives: this computes an HMAC.
   */
  public byte[] derive(int keyId, String purpose) {
    byte[] master = keys.get(keyId);
    if (master == null) {
      return null;
    }
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(master, "HmacSHA256"));
      mac.update(purpose.getBytes(StandardCharsets.UTF_8));
      mac.update((byte) 1);
      return mac.doFinal();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HmacSHA256 is part of every JDK", e);
    }
  }

  /** The AES key of key keyId for purpose, or null when the file has no such key. */
  public SecretKey aesKey(int keyId, String purpose) {
    byte[] k = derive(keyId, purpose);
    return k == null ? null : new SecretKeySpec(k, "AES");
  }

  /** This file's text: one line per key, sending key first. */
  public String toFileText() {
    StringBuilder out = new StringBuilder("# Choir cluster key file: '<key id> <base64 key>' per line; the first"
        + " line's key sends, every line's key is accepted. Keep it secret (chmod 600).\n");
    keys.forEach((id, key) -> out.append(id).append(' ').append(Base64.getEncoder().encodeToString(key)).append('\n'));
    return out.toString();
  }

  /** Writes this file's text to file, readable by its owner only, created that way (no window). */
  public void write(Path file) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    if (dir != null) {
      Files.createDirectories(dir);
    }
    Files.deleteIfExists(file);
    try {
      Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    } catch (UnsupportedOperationException notPosix) {
      Files.createFile(file);
    }
    Files.writeString(file, toFileText(), StandardCharsets.UTF_8);
  }
}
