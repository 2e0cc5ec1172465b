package io.choir.server.net;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * TestPeerFaults is the TEST ONLY fault injection of the peer transport: the peers cut off from this
 * replica both ways, as last read from test_fault_file (comma- or space-separated ids; a missing or
 * empty file heals; the transport reads it every {@link #FAULT_FILE_POLL_MS} on its event loop), and
 * the random loss of received multicast datagrams of test_multicast_loss_percent. With neither setting
 * it cuts nothing and loses nothing.
 */
final class TestPeerFaults {
  /** The transport's logger: its lines keep the name operators know them by. */
  private static final Logger log = LoggerFactory.getLogger(PeerTransport.class);
  /** How often the transport reads the fault file. */
  static final long FAULT_FILE_POLL_MS = 100;

  private final int multicastLossPercent;
  /** Only for the multicast loss; used on the transport's one event loop. */
  private final SplittableRandom lossRandom = new SplittableRandom();
  /** Peers cut off from this replica, both ways; replaced whole at each read of the fault file. */
  private volatile Set<Integer> blockedPeers = Set.of();

  /** Loses multicastLossPercent of received multicast datagrams (0: none) and cuts no peer yet. */
  TestPeerFaults(int multicastLossPercent) {
    this.multicastLossPercent = multicastLossPercent;
  }

  /** Whether messages to or from peer are cut off. */
  boolean blocks(int peer) {
    return blockedPeers.contains(peer);
  }

  /** Whether the datagram received at recipient is lost on purpose (multicast only; event loop). */
  boolean losesMulticast(InetSocketAddress recipient) {
    return multicastLossPercent > 0 && recipient != null && recipient.getAddress().isMulticastAddress()
        && lossRandom.nextInt(100) < multicastLossPercent;
  }

  /** Reads the comma-separated ids of the peers to cut off (a missing or empty file heals). */
  void readFaultFile(Path file) {
    try {
      String text = Files.exists(file) ? Files.readString(file).trim() : "";
      Set<Integer> ids = new HashSet<>();
      for (String part : text.split("[,\\s]+")) {
        if (!part.isEmpty()) {
          ids.add(Integer.parseInt(part));
        }
      }
      blockedPeers = Set.copyOf(ids);
    } catch (IOException | NumberFormatException e) {
      log.atWarn().addKeyValue("file", file).addKeyValue("reason", e.getMessage()).log("unreadable fault file");
    }
  }
}
