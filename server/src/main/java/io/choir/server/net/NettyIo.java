package io.choir.server.net;

import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;

/** NettyIo picks one I/O flavour for every transport of the replica: epoll when available, NIO otherwise. */
final class NettyIo {
  private NettyIo() {}

  static boolean epoll() {
    return Epoll.isAvailable();
  }

  static IoHandlerFactory ioHandlerFactory() {
    return epoll() ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
  }

  static Class<? extends ServerChannel> serverChannelType() {
    return epoll() ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
  }

  static Class<? extends SocketChannel> socketChannelType() {
    return epoll() ? EpollSocketChannel.class : NioSocketChannel.class;
  }
}
