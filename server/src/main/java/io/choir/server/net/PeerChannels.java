package io.choir.server.net;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.DatagramPacket;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.socket.nio.NioDatagramChannel;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.concurrent.TimeUnit;

/**
 * PeerChannels owns the peer transport's UDP sockets and their one event loop: the unicast
 * channel bound to this replica's peer address (every datagram is sent from it) and, unless the
 * transport is unicast only, the multicast channel bound to the group and joined on the configured
 * interface; both hand what they receive to one handler.
 *
 * <p>Multicast stays where it is configured: the channels are created with the IPv4 family (an IPv6
 * socket would ignore IP_MULTICAST_IF for an IPv4 group and send through the default route, see
 * ../shared/ENVIRONMENT.md), IP_MULTICAST_IF and the group membership use the configured interface
 * (loopback by default), IP_MULTICAST_ALL is off on Linux, and the TTL is configurable (1 by default).
 */
final class PeerChannels implements AutoCloseable {
  /** Room for the largest UDP datagram: a receive never truncates one. */
  private static final int RECEIVE_ALLOCATION_BYTES = 65_536;

  private final InetSocketAddress groupAddress;
  private final NetworkInterface iface;
  private final InetAddress ifaceAddress;
  private final boolean epoll;
  private final EventLoopGroup group;
  private final DatagramChannel unicast;
  private final DatagramChannel multicast;

  /**
   * Binds self and, when multicast is true, groupAddress (joined on the interface named
   * interfaceName, which must exist and have an IPv4 address), handing every received datagram to
   * inbound (a sharable handler). Without multicast (peer_transport: unicast) there is no group
   * socket and no multicast socket option is set at all.
   */
  PeerChannels(InetSocketAddress self, InetSocketAddress groupAddress, String interfaceName, int ttl,
      int receiveBufferBytes, ChannelHandler inbound, boolean multicast)
      throws InterruptedException, SocketException {
    this.groupAddress = groupAddress;
    if (multicast) {
      this.iface = NetworkInterface.getByName(interfaceName);
      if (iface == null) {
        throw new IllegalArgumentException("multicast_interface '" + interfaceName
            + "' does not exist on this machine");
      }
      this.ifaceAddress = iface.inetAddresses().filter(a -> a instanceof Inet4Address)
          .findFirst().orElseThrow(() -> new IllegalArgumentException(
              "multicast_interface '" + interfaceName + "' has no IPv4 address"));
    } else {
      this.iface = null;
      this.ifaceAddress = null;
    }
    this.epoll = NettyIo.epoll();
    this.group = new MultiThreadIoEventLoopGroup(1, NettyIo.ioHandlerFactory());
    ChannelFactory<DatagramChannel> channels = epoll
        ? () -> new EpollDatagramChannel(SocketProtocolFamily.INET)
        : () -> new NioDatagramChannel(SocketProtocolFamily.INET);
    Bootstrap base = new Bootstrap().group(group).channelFactory(channels)
        .option(ChannelOption.SO_RCVBUF, receiveBufferBytes)
        .option(ChannelOption.RCVBUF_ALLOCATOR, new FixedRecvByteBufAllocator(RECEIVE_ALLOCATION_BYTES))
        .handler(inbound);
    if (multicast) {
      base.option(ChannelOption.IP_MULTICAST_IF, iface)
          .option(ChannelOption.IP_MULTICAST_TTL, ttl)
          .option(ChannelOption.IP_MULTICAST_LOOP_DISABLED, false);
      if (epoll) {
        base.option(EpollChannelOption.IP_MULTICAST_ALL, false);
      }
    }
    try {
      this.unicast = (DatagramChannel) base.clone().bind(self).sync().channel();
      if (multicast) {
        Bootstrap mc = base.clone().option(ChannelOption.SO_REUSEADDR, true);
        if (epoll) {
          mc.option(EpollChannelOption.SO_REUSEPORT, true);
        }
        this.multicast = (DatagramChannel) mc.bind(groupAddress).sync().channel();
        this.multicast.joinGroup(groupAddress, iface).sync();
      } else {
        this.multicast = null;
      }
    } catch (RuntimeException | InterruptedException e) {
      group.shutdownGracefully(0, 0, TimeUnit.MILLISECONDS);
      throw e;
    }
  }

  /** True when the group is joined (peer_transport multicast or auto). */
  boolean multicast() {
    return multicast != null;
  }

  /** Sends one datagram to dest from the unicast channel (any thread; a failure is not reported). */
  void write(InetSocketAddress dest, byte[] datagram) {
    unicast.writeAndFlush(new DatagramPacket(Unpooled.wrappedBuffer(datagram), dest), unicast.voidPromise());
  }

  /** The one event loop group of both channels (also runs the transport's periodic test tasks). */
  EventLoopGroup eventLoops() {
    return group;
  }

  /** The receive buffer the OS granted the unicast socket (it may clamp what was asked). */
  int grantedReceiveBufferBytes() {
    return unicast.config().getOption(ChannelOption.SO_RCVBUF);
  }

  /** The interface's IPv4 address multicast goes out of and is joined on (null without multicast). */
  InetAddress interfaceAddress() {
    return ifaceAddress;
  }

  boolean epoll() {
    return epoll;
  }

  @Override
  public void close() {
    if (multicast != null) {
      try {
        multicast.leaveGroup(groupAddress, iface).awaitUninterruptibly(500, TimeUnit.MILLISECONDS);
      } catch (RuntimeException ignored) {
        // closing anyway
      }
      multicast.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    }
    unicast.close().awaitUninterruptibly(1, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(2, TimeUnit.SECONDS);
  }
}
