package io.choir.server.net;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.net.InetAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * ConnectionsPerAddress counts open client connections by source address. Its {@link #gate()} is the
 * listening channel's handler: it sees each accepted connection before it gets a pipeline, an event
 * loop or a reply, and closes one beyond the bound at once (counted as client_refused.per_address), so
 * a flood of connections from one host costs the replica an accept and a close each. An admitted
 * connection holds its place until its pipeline has torn down (channelUnregistered, which comes after
 * channelInactive), not only until its socket closed: otherwise, while many closed connections wait for
 * their inactive events, new ones are admitted and more than the bound are registered at once.
 * Thread-safe.
 */
final class ConnectionsPerAddress {
  private final int maxPerAddress;
  private final ClientDrops drops;
  private final Map<InetAddress, Integer> open = new ConcurrentHashMap<>();
  private final ChannelHandler gate = new Gate();

  ConnectionsPerAddress(int maxPerAddress, ClientDrops drops) {
    this.maxPerAddress = maxPerAddress;
    this.drops = drops;
  }

  ChannelHandler gate() {
    return gate;
  }

  @ChannelHandler.Sharable
  private final class Gate extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof Channel child)) {
        ctx.fireChannelRead(msg);
        return;
      }
      InetAddress address = ClientConnections.address(child.remoteAddress());
      if (!admit(address)) {
        drops.count(ClientDrops.Reason.REFUSED_PER_ADDRESS, child.remoteAddress(),
            "max_connections_per_address " + maxPerAddress);
        child.unsafe().closeForcibly();
        return;
      }
      Place place = new Place(address);
      child.pipeline().addFirst(place);
      // A child whose registration fails is closed without ever being registered: then no
      // channelUnregistered comes, and its close frees the place.
      child.closeFuture().addListener(f -> {
        if (!place.registered) {
          place.free();
        }
      });
      ctx.fireChannelRead(child);
    }
  }

  /** One admitted connection's place: freed once, when its channel is unregistered. */
  private final class Place extends ChannelInboundHandlerAdapter {
    private final InetAddress address;
    private final AtomicBoolean freed = new AtomicBoolean();
    volatile boolean registered;

    Place(InetAddress address) {
      this.address = address;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      // Called at registration for a channel not yet registered, at once for one that is.
      registered = true;
    }

    @Override
    public void channelUnregistered(ChannelHandlerContext ctx) {
      free();
      ctx.fireChannelUnregistered();
    }

    void free() {
      if (freed.compareAndSet(false, true)) {
        release(address);
      }
    }
  }

  /** Counts one more connection from address, unless it already has maxPerAddress. */
  boolean admit(InetAddress address) {
    // Set inside compute, which runs the function once, atomically for this address.
    AtomicBoolean admitted = new AtomicBoolean();
    open.compute(address, (a, n) -> {
      int count = n == null ? 0 : n;
      if (count >= maxPerAddress) {
        return n;
      }
      admitted.set(true);
      return count + 1;
    });
    return admitted.get();
  }

  void release(InetAddress address) {
    open.computeIfPresent(address, (a, n) -> n <= 1 ? null : n - 1);
  }
}
