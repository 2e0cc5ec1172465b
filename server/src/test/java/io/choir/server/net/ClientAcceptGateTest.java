package io.choir.server.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
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

  /**
   * A closed connection keeps its place until its pipeline has torn down. Its socket's close (the
   * close future) comes before its channelInactive, where the replica forgets the connection; freeing
   * the place at the close let a flood that closes and opens connections register more than the bound
   * at once (HostileClientProcessTest (c) saw 281 open with a bound of 256).
   */
  @Test
  void shouldKeepAClosedConnectionsPlaceUntilItsInactiveEventHasRun() {
    SimpleMeterRegistry metrics = new SimpleMeterRegistry();
    ClientConnections connections = new ClientConnections(new ClientConnections.Limits(16, 4096, 1 << 20, 1, 0, 1),
        Runnable::run, r -> null, metrics);
    EmbeddedChannel listener = new EmbeddedChannel(connections.acceptGate());
    EmbeddedChannel first = new EmbeddedChannel();
    boolean[] admittedWhileFirstWasClosing = {false, false};
    first.pipeline().addLast(new ChannelInboundHandlerAdapter() {
      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        // Here the replica's ClientHandler unregisters the connection: its place must still be held.
        EmbeddedChannel during = new EmbeddedChannel();
        listener.writeInbound(during);
        admittedWhileFirstWasClosing[0] = listener.readInbound() != null;
        admittedWhileFirstWasClosing[1] = true;
        ctx.fireChannelInactive();
      }
    });
    listener.writeInbound(first);
    assertSame(first, listener.readInbound());
    first.close();
    assertTrue(admittedWhileFirstWasClosing[1], "the first connection's inactive event did not run");
    assertFalse(admittedWhileFirstWasClosing[0],
        "a second connection was admitted while the first, closed, was still being torn down");
    EmbeddedChannel after = new EmbeddedChannel();
    listener.writeInbound(after);
    assertSame(after, listener.readInbound(), "the place was not freed once the first was unregistered");
    after.close();
    listener.finishAndReleaseAll();
  }
}
