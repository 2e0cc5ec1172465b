package io.choir.server.net;

import io.netty.util.internal.PlatformDependent;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;

/**
 * DirectMemory reports the direct (off-heap) memory this JVM's buffers hold and may hold: Netty's
 * buffers (reply and request bytes of every connection live there) count against
 * -XX:MaxDirectMemorySize, and an allocation near that limit makes the JDK call System.gc() and wait,
 * which stalls every connection. So bounds on client bytes are sized from {@link #max()}.
 */
public final class DirectMemory {
  private DirectMemory() {}

  /** Direct memory in use: Netty's own count when it allocates without cleaners, plus the JDK's. */
  public static long used() {
    return netty() + jdk();
  }

  /** What Netty allocated without cleaners (0 when it allocates through the JDK). */
  public static long netty() {
    return Math.max(0, PlatformDependent.usedDirectMemory());
  }

  /** What the JDK's direct buffers hold (ByteBuffer.allocateDirect, counted against the same limit). */
  public static long jdk() {
    long jdk = 0;
    for (BufferPoolMXBean pool : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
      if (pool.getName().equals("direct")) {
        jdk += pool.getMemoryUsed();
      }
    }
    return jdk;
  }

  /** The most direct memory this JVM may use (-XX:MaxDirectMemorySize, by default the heap's maximum). */
  public static long max() {
    return PlatformDependent.maxDirectMemory();
  }
}
