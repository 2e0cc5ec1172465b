package io.choir.server.net;

import java.io.IOException;

/**
 * PeerTcpRefusedException: a peer TCP connection failed its {@link PeerTcpAuth} check (the
 * handshake, the address check, or a sealed record that does not open); {@link #reason()} is the
 * counter suffix (bad_proof, timeout, refused, ...).
 */
public final class PeerTcpRefusedException extends IOException {
  private final String reason;

  public PeerTcpRefusedException(String reason, String message) {
    super("peer TCP " + reason + ": " + message);
    this.reason = reason;
  }

  public String reason() {
    return reason;
  }
}
