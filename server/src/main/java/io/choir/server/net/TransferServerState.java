package io.choir.server.net;

import io.netty.channel.Channel;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * TransferServerState is what every connection of one {@link StateTransferServer} shares: the open
 * connections counted against maxConnections, the transfer permits (maxConcurrentTransfers snapshots
 * at a time), the open peer stream of each sender (one each: a newer one replaces the older), and
 * the tallies the server reports. Connections run on several event loops, so all of it is atomic.
 */
final class TransferServerState {
  private final int maxConnections;
  private final int maxConcurrentTransfers;
  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicInteger transfers = new AtomicInteger();
  private final AtomicLong served = new AtomicLong();
  private final AtomicLong refused = new AtomicLong();
  private final AtomicLong chunksWritten = new AtomicLong();
  private final AtomicLong streamsAccepted = new AtomicLong();
  private final Map<Integer, Channel> streamsBySender = new ConcurrentHashMap<>();

  TransferServerState(int maxConnections, int maxConcurrentTransfers) {
    this.maxConnections = maxConnections;
    this.maxConcurrentTransfers = maxConcurrentTransfers;
  }

  /** Counts a new connection; false when that puts the count above maxConnections (it still counts). */
  boolean connectionOpened() {
    return connections.incrementAndGet() <= maxConnections;
  }

  /** A counted connection closed or became a peer stream (which no longer counts). */
  void connectionReleased() {
    connections.decrementAndGet();
  }

  /** Takes a transfer permit; false (and nothing taken) when maxConcurrentTransfers are streaming. */
  boolean takeTransferPermit() {
    if (transfers.incrementAndGet() > maxConcurrentTransfers) {
      transfers.decrementAndGet();
      return false;
    }
    return true;
  }

  void returnTransferPermit() {
    transfers.decrementAndGet();
  }

  void transferServed() {
    served.incrementAndGet();
  }

  void connectionRefused() {
    refused.incrementAndGet();
  }

  void chunkWritten() {
    chunksWritten.incrementAndGet();
  }

  /** channel is now sender's peer stream; returns the stream it replaces, or null. */
  Channel streamAccepted(int sender, Channel channel) {
    streamsAccepted.incrementAndGet();
    return streamsBySender.put(sender, channel);
  }

  /** channel, sender's peer stream, closed (a newer stream of the sender stays). */
  void streamClosed(int sender, Channel channel) {
    streamsBySender.remove(sender, channel);
  }

  long served() {
    return served.get();
  }

  long refused() {
    return refused.get();
  }

  long chunksWritten() {
    return chunksWritten.get();
  }

  long streamsAccepted() {
    return streamsAccepted.get();
  }

  int openStreams() {
    return streamsBySender.size();
  }

  int activeTransfers() {
    return transfers.get();
  }
}
