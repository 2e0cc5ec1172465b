package io.choir.server.security;

import io.choir.proto.wire.DatagramHeader;
import io.choir.server.storage.Bytes;
import io.choir.server.storage.MetaKeys;
import io.choir.server.storage.Storage;
import io.choir.server.storage.WriteSet;

/**
 * DatagramEpochs gives each start of a replica a new datagram epoch, the middle of every sealed
 * datagram's nonce ({@link DatagramCodec}): a nonce repeated under one AES-GCM key would give away the
 * key's authentication (and the two plaintexts' XOR), so an epoch is never used twice.
 *
 * <p>It is one more than the last start's (persisted, synced, before the first datagram is sent, so a
 * crash right after cannot hand out the same epoch again), and at least the wall clock in seconds: a
 * replica whose data folder was wiped (a replaced disk) still gets an epoch above every earlier one,
 * which it needs both for fresh nonces and to pass its peers' replay windows (they drop an older epoch
 * of a sender). Only a wiped replica that also restarted more than once a second on average before, or
 * whose clock went back, could repeat an epoch; the wall clock is an argument, not read here.
 */
public final class DatagramEpochs {
  private static final byte[] KEY = MetaKeys.bytes(MetaKeys.DATAGRAM_EPOCH);

  private DatagramEpochs() {}

  /** The epoch after stored (0: none yet) at wall-clock time unixSeconds. */
  public static long next(long stored, long unixSeconds) {
    long next = Math.max(stored + 1, unixSeconds);
    if (stored < 0 || next > DatagramHeader.MAX_EPOCH) {
      throw new IllegalStateException("datagram epoch exhausted (stored " + stored + "): the replica cannot"
          + " send a datagram without repeating a nonce");
    }
    return Math.max(next, 1);
  }

  /** Reads the last epoch from storage, writes the next one synced, and returns it. */
  public static long advance(Storage storage, long unixSeconds) {
    byte[] v = storage.getMeta(KEY);
    long stored = v == null ? 0 : Bytes.bytesToLong(v);
    long next = next(stored, unixSeconds);
    storage.write(new WriteSet().putMeta(KEY, Bytes.longToBytes(next)), true);
    return next;
  }
}
