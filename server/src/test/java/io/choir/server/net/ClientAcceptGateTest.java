package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.embedded.EmbeddedChannel;
import org.junit.jupiter.api.Test;

/** ClientConnections.acceptGate: connections per source address, refused at accept and counted. */
class ClientAcceptGateTest {
  @Test
  void shouldCloseConnectionsBeyondThePerAddressBoundAtAcceptAndCountThem() {
    SimpleMeterRegistry metrics = new SimpleMeterRegistry();
    ClientConnections connections = new ClientConnections(new ClientConnections.Limits(16, 4096, 1 << 20, 2, 0, 1),
        Runnable::run, r -> null, metrics);
    EmbeddedChannel listener = new EmbeddedChannel(connections.acceptGate());
    // EmbeddedChannels have no IP address: the gate takes them all for the same (loopback) address.
    EmbeddedChannel first = new EmbeddedChannel();
    EmbeddedChannel second = new EmbeddedChannel();
    EmbeddedChannel third = new EmbeddedChannel();
    listener.writeInbound(first, second, third);
    assertSame(first, listener.readInbound());
    assertSame(second, listener.readInbound());
    assertNull(listener.readInbound(), "the third connection from the address went on");
    assertFalse(third.isOpen(), "the third connection was not closed");
    assertEquals(1, (long) metrics.counter("choir.client_refused.per_address").count());
    first.close();
    EmbeddedChannel fourth = new EmbeddedChannel();
    listener.writeInbound(fourth);
    assertSame(fourth, listener.readInbound(), "a closed connection's place is free again");
    assertTrue(fourth.isOpen());
    for (Channel c : new Channel[] {second, fourth}) {
      c.close();
    }
    listener.finishAndReleaseAll();
  }
}
