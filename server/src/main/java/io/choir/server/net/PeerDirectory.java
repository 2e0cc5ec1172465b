package io.choir.server.net;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * PeerDirectory is the one place that knows where every member's peer port is: member id to host
 * (a literal or a DNS name, {@code choir-1.choir-peers}) and port, and the address the host resolves
 * to now. Everything that sends to a peer or checks where a datagram or connection came from asks it.
 *
 * <p>Names are resolved at start through an injectable {@link Resolver}; a name that does not resolve
 * yet is not fatal: it has no address (sends to it are dropped and counted, the core repairs), it is
 * logged once, and it is tried again. A peer is resolved again when it seems unreachable: no datagram
 * heard from it for silenceNs ({@link #resolveSilent}), or a failed TCP connect to it ({@link
 * #resolve}); at most once per {@link #MIN_RESOLVE_INTERVAL_NS} per peer. A changed address is logged
 * (info) and counted (choir.peer_directory.address_changes; every resolution:
 * choir.peer_directory.resolutions, failures: choir.peer_directory.unresolved).
 *
 * <p>{@link #update} replaces the whole id to host:port map at run time (a membership change); the
 * listeners ({@link #onMembersChanged}: the datagram codec's known senders, the peer streams' links,
 * the stream inbound's members) follow it. A member the update drops becomes a former member (the last
 * {@link #MAX_FORMER}, in memory): it may have been cut off when it was removed and still take itself
 * for a member, so its datagrams are still accepted, it may be sent to, and it may connect to fetch a
 * state transfer (which tells it that it was removed); it gets no peer stream and is no member.
 *
 * <p>Threads: any. Lookups read an immutable snapshot; resolutions of one peer are serialized on it
 * (a resolver may block: the transport calls them from its own resolver thread).
 */
public final class PeerDirectory {
  private static final Logger log = LoggerFactory.getLogger(PeerDirectory.class);

  /** A peer is resolved at most once per this interval. */
  public static final long MIN_RESOLVE_INTERVAL_NS = TimeUnit.SECONDS.toNanos(1);

  /** Resolver turns a host (name or literal) into one address; tests pass a fake one. */
  @FunctionalInterface
  public interface Resolver {
    /** The host's address now; throws when it does not resolve. */
    InetAddress resolve(String host) throws UnknownHostException;

    /** The system's resolver, preferring an IPv4 address (the peer sockets are IPv4). */
    Resolver SYSTEM = host -> {
      InetAddress[] all = InetAddress.getAllByName(host);
      for (InetAddress a : all) {
        if (a instanceof Inet4Address) {
          return a;
        }
      }
      return all[0];
    };
  }

  /** One member: its configured host and port, and what the host resolves to now. */
  private static final class Peer {
    final int id;
    final String host;
    final int port;
    /** Given resolved, or a literal: never resolved again. */
    final boolean fixed;
    volatile InetSocketAddress address;
    volatile long lastHeardNs;
    long lastResolveNs;
    boolean resolvedOnce;
    boolean failureLogged;

    Peer(int id, String host, int port, boolean fixed, long now) {
      this.id = id;
      this.host = host;
      this.port = port;
      this.fixed = fixed;
      this.lastHeardNs = now;
    }
  }

  private final int selfId;
  private final Resolver resolver;
  private final LongSupplier nanoClock;
  private final long silenceNs;
  private final Counter resolutions;
  private final Counter changes;
  private final Counter unresolved;
  private final List<Consumer<Set<Integer>>> listeners = new CopyOnWriteArrayList<>();
  /** Id to peer, replaced whole by {@link #update}. */
  private volatile Map<Integer, Peer> peers;
  /** Members dropped by updates, oldest first (at most {@link #MAX_FORMER}), replaced whole. */
  private volatile Map<Integer, Peer> former = Map.of();

  /** How many former members are remembered. */
  public static final int MAX_FORMER = 16;

  /**
   * A directory of replica selfId's cluster: members maps every id (selfId included) to its peer
   * address: an unresolved one ({@link InetSocketAddress#createUnresolved}) names the host (a name or
   * a literal) that is resolved, now and again later; a resolved one is taken as it is, for good
   * (tests, fixed addresses). resolver finds addresses,
   * nanoClock is monotonic time, a peer silent for silenceNs is resolved again. Every member is
   * resolved once here.
   */
  public PeerDirectory(int selfId, Map<Integer, InetSocketAddress> members, Resolver resolver,
      LongSupplier nanoClock, long silenceNs, MeterRegistry metrics) {
    this.selfId = selfId;
    this.resolver = resolver;
    this.nanoClock = nanoClock;
    this.silenceNs = silenceNs;
    this.resolutions = metrics.counter("choir.peer_directory.resolutions");
    this.changes = metrics.counter("choir.peer_directory.address_changes");
    this.unresolved = metrics.counter("choir.peer_directory.unresolved");
    this.peers = build(members, Map.of());
    peers.keySet().forEach(this::resolveNow);
  }

  /** A directory with the system resolver, re-resolving peers silent for a second (tests and tools). */
  public static PeerDirectory of(int selfId, Map<Integer, InetSocketAddress> members) {
    return new PeerDirectory(selfId, members, Resolver.SYSTEM, System::nanoTime, TimeUnit.SECONDS.toNanos(1),
        new SimpleMeterRegistry());
  }

  private Map<Integer, Peer> build(Map<Integer, InetSocketAddress> members, Map<Integer, Peer> old) {
    long now = nanoClock.getAsLong();
    Map<Integer, Peer> out = new TreeMap<>();
    members.forEach((id, a) -> {
      Peer before = old.get(id);
      if (before != null && before.host.equals(a.getHostString()) && before.port == a.getPort()) {
        out.put(id, before);
        return;
      }
      boolean resolved = !a.isUnresolved() && a.getAddress() != null;
      boolean literal = isLiteral(a.getHostString());
      Peer p = new Peer(id, a.getHostString(), a.getPort(), resolved || literal, now);
      if (resolved) {
        p.address = a;
      } else if (literal) {
        p.address = new InetSocketAddress(a.getHostString(), a.getPort()); // a literal: parsed, no lookup
      }
      out.put(id, p);
    });
    return Collections.unmodifiableMap(out);
  }

  private static boolean isLiteral(String host) {
    return host.indexOf(':') >= 0 || host.chars().allMatch(c -> c == '.' || Character.isDigit(c));
  }

  /** This replica's id. */
  public int selfId() {
    return selfId;
  }

  /** Every member id, this replica's included. */
  public Set<Integer> ids() {
    return peers.keySet();
  }

  /** The ids of the other members. */
  public List<Integer> peerIds() {
    List<Integer> out = new ArrayList<>();
    for (int id : peers.keySet()) {
      if (id != selfId) {
        out.add(id);
      }
    }
    return out;
  }

  /** True when id is a member. */
  public boolean isMember(int id) {
    return peers.containsKey(id);
  }

  /** True when id was a member until an update dropped it (and is none now). */
  public boolean isFormer(int id) {
    return former.containsKey(id);
  }

  /** The former members remembered, oldest first. */
  public Set<Integer> formerIds() {
    return former.keySet();
  }

  /** The members and the former members: who may send datagrams and ask for a state transfer. */
  public Set<Integer> acceptedIds() {
    Set<Integer> out = new TreeSet<>(peers.keySet());
    out.addAll(former.keySet());
    return Collections.unmodifiableSet(out);
  }

  /**
   * The address of member (or former member) id now, or null (neither, or its name does not resolve
   * yet).
   */
  public InetSocketAddress address(int id) {
    Peer p = peers.get(id);
    if (p == null) {
      p = former.get(id);
    }
    return p == null ? null : p.address;
  }

  /** The configured host:port of member id (a name or a literal), or null. */
  public String configured(int id) {
    Peer p = peers.get(id);
    return p == null ? null : p.host + ":" + p.port;
  }

  /** The member whose peer address is address now, or -1. */
  public int idOf(InetSocketAddress address) {
    if (address == null) {
      return -1;
    }
    for (Peer p : peers.values()) {
      InetSocketAddress a = p.address;
      if (a != null && a.getPort() == address.getPort() && a.getAddress() != null
          && a.getAddress().equals(address.getAddress())) {
        return p.id;
      }
    }
    return -1;
  }

  /** True when host is the address another member's (or a former member's) host resolves to now. */
  public boolean isPeerHost(InetAddress host) {
    if (host == null) {
      return false;
    }
    for (Map<Integer, Peer> m : List.of(peers, former)) {
      for (Peer p : m.values()) {
        InetSocketAddress a = p.address;
        if (p.id != selfId && a != null && host.equals(a.getAddress())) {
          return true;
        }
      }
    }
    return false;
  }

  /** This replica's own peer host as resolved (null: unresolved, or the wildcard). */
  public InetAddress selfHost() {
    InetSocketAddress a = address(selfId);
    return a == null || a.getAddress() == null || a.getAddress().isAnyLocalAddress() ? null : a.getAddress();
  }

  /** Notes a datagram heard from member id (any thread; cheap). */
  public void heard(int id) {
    Peer p = peers.get(id);
    if (p != null) {
      p.lastHeardNs = nanoClock.getAsLong();
    }
  }

  /**
   * Resolves member id again, unless it was resolved less than {@link #MIN_RESOLVE_INTERVAL_NS} ago;
   * true when its address changed (a failure keeps the old one).
   */
  public boolean resolve(int id) {
    Peer p = peers.get(id);
    if (p == null) {
      return false;
    }
    synchronized (p) {
      if (p.resolvedOnce && nanoClock.getAsLong() - p.lastResolveNs < MIN_RESOLVE_INTERVAL_NS) {
        return false;
      }
    }
    return resolveNow(id);
  }

  /** Resolves every other member heard nothing from for silenceNs, or without an address; how many changed. */
  public int resolveSilent() {
    long now = nanoClock.getAsLong();
    int changed = 0;
    for (Peer p : peers.values()) {
      if (p.id != selfId && (p.address == null || now - p.lastHeardNs >= silenceNs) && resolve(p.id)) {
        changed++;
      }
    }
    // This replica's own name too, while it does not resolve (a pod's name appears once it is ready).
    if (address(selfId) == null && resolve(selfId)) {
      changed++;
    }
    return changed;
  }

  private boolean resolveNow(int id) {
    Peer p = peers.get(id);
    if (p == null) {
      return false;
    }
    if (p.address != null && p.fixed) {
      return false; // a literal, or an address given resolved, never changes
    }
    synchronized (p) {
      p.lastResolveNs = nanoClock.getAsLong();
      p.resolvedOnce = true;
      resolutions.increment();
      InetAddress found;
      try {
        found = isLiteral(p.host) ? InetAddress.getByName(p.host) : resolver.resolve(p.host);
      } catch (UnknownHostException | RuntimeException e) {
        unresolved.increment();
        if (!p.failureLogged) {
          p.failureLogged = true;
          log.atWarn().addKeyValue("peer", id).addKeyValue("host", p.host).addKeyValue("reason", e.getMessage())
              .log("peer host does not resolve (yet); retrying, sends to it are dropped meanwhile");
        }
        return false;
      }
      p.failureLogged = false;
      InetSocketAddress before = p.address;
      if (before != null && found.equals(before.getAddress())) {
        return false;
      }
      p.address = new InetSocketAddress(found, p.port);
      if (before != null) {
        changes.increment();
      }
      if (before != null || !isLiteral(p.host)) {
        log.atInfo().addKeyValue("peer", id).addKeyValue("host", p.host).addKeyValue("was", before)
            .addKeyValue("now", p.address).log(before == null ? "peer host resolved" : "peer address changed");
      }
      return before != null;
    }
  }

  /**
   * Replaces the whole member map (a membership change): members whose host:port stayed keep their
   * address and history; then every listener gets the new id set. It never blocks on a lookup (the
   * caller may be the replica thread): a new member given by name has no address until the next
   * {@link #resolveSilent} (the transport's resolver thread, within one silence interval) or {@link
   * #resolve}; one given as a literal or resolved has it at once.
   */
  public void update(Map<Integer, InetSocketAddress> members) {
    if (!members.containsKey(selfId)) {
      throw new IllegalArgumentException("replica " + selfId + " is not one of the members " + members.keySet());
    }
    Map<Integer, Peer> next;
    synchronized (this) {
      Map<Integer, Peer> before = peers;
      next = build(members, before);
      Map<Integer, Peer> formerNext = new LinkedHashMap<>(former);
      formerNext.keySet().removeAll(next.keySet());
      before.forEach((id, p) -> {
        if (!next.containsKey(id) && id != selfId) {
          formerNext.remove(id);
          formerNext.put(id, p); // newest last
        }
      });
      while (formerNext.size() > MAX_FORMER) {
        formerNext.remove(formerNext.keySet().iterator().next());
      }
      peers = next;
      former = Collections.unmodifiableMap(formerNext);
    }
    log.atInfo().addKeyValue("members", next.keySet()).addKeyValue("former", former.keySet())
        .log("peer directory updated");
    for (Consumer<Set<Integer>> l : listeners) {
      l.accept(next.keySet());
    }
  }

  /** Calls listener with the new member ids after every {@link #update}. */
  public void onMembersChanged(Consumer<Set<Integer>> listener) {
    listeners.add(listener);
  }

  /** Resolutions attempted so far. */
  public long resolutions() {
    return (long) resolutions.count();
  }

  /** Address changes seen so far. */
  public long addressChanges() {
    return (long) changes.count();
  }
}
