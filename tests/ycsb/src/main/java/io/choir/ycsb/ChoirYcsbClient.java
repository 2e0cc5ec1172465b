package io.choir.ycsb;

import io.choir.client.BusyException;
import io.choir.client.CasFailedException;
import io.choir.client.ChoirClient;
import io.choir.client.ChoirTimeoutException;
import io.choir.client.KeyValueVersion;
import io.choir.client.ReadConsistency;
import io.choir.client.UnavailableException;
import io.choir.client.VersionedValue;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import site.ycsb.DBException;
import site.ycsb.Status;

/**
 * ChoirYcsbClient is the YCSB 0.17.0 binding of Choir: {@code -db io.choir.ycsb.ChoirYcsbClient}
 * (records as {@link RecordDb} stores them). Reads are linearizable by default; a partial update's
 * conditional write is a compare-and-set on the version read.
 *
 * <p>YCSB makes one DB per client thread; the threads share {@code choir.connections} Choir clients
 * (default 1; each a connection to each replica, with many requests in flight), given out in turn, so a
 * run of 64 threads over one connection measures what a server does with pipelined clients, not with 64
 * sockets.
 *
 * <p>Properties: {@code choir.endpoints} (host:port,...; default the local cluster's 127.0.0.1:7301,
 * 7302, 7303), {@code choir.connections}, {@code choir.read} (linearizable or sequential), {@code
 * choir.timeout_ms} (per request, default 10,000), {@code choir.cacert}, {@code choir.cert}, {@code
 * choir.key} (mutual TLS), {@code choir.token}.
 *
 * <p>Statuses: NOT_FOUND for an absent record, SERVICE_UNAVAILABLE when no replica could take the
 * request (busy, unavailable), TIMEOUT for a request whose outcome is unknown (a write may have
 * happened), ERROR otherwise.
 */
public final class ChoirYcsbClient extends RecordDb {
  static final String DEFAULT_ENDPOINTS = "127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303";

  /** What makes one set of shared clients. */
  record Settings(List<String> endpoints, long timeoutMs, String caCert, String cert, String key, String token) {}

  @Override
  protected Store open(Properties p) throws DBException {
    int connections = Integer.parseInt(p.getProperty("choir.connections", "1"));
    if (connections < 1) {
      throw new DBException("choir.connections must be at least 1");
    }
    String read = p.getProperty("choir.read", "linearizable");
    ReadConsistency consistency = switch (read) {
      case "linearizable" -> ReadConsistency.LINEARIZABLE;
      case "sequential" -> ReadConsistency.SEQUENTIAL;
      default -> throw new DBException("choir.read must be linearizable or sequential, not " + read);
    };
    Settings s = new Settings(List.of(p.getProperty("choir.endpoints", DEFAULT_ENDPOINTS).split(",")),
        Long.parseLong(p.getProperty("choir.timeout_ms", "10000")), p.getProperty("choir.cacert"),
        p.getProperty("choir.cert"), p.getProperty("choir.key"), p.getProperty("choir.token"));
    try {
      return new ChoirStore(SharedClients.acquire(s, connections, () -> build(s)), consistency);
    } catch (RuntimeException e) {
      throw new DBException("cannot make a Choir client: " + e.getMessage(), e);
    }
  }

  private static ChoirClient build(Settings s) {
    ChoirClient.Builder b = ChoirClient.builder().endpoints(s.endpoints())
        .requestTimeout(Duration.ofMillis(s.timeoutMs()));
    if (s.caCert() != null) {
      b.trustCertificates(Path.of(s.caCert()));
    }
    if (s.cert() != null || s.key() != null) {
      if (s.cert() == null || s.key() == null) {
        throw new IllegalArgumentException("choir.cert and choir.key go together");
      }
      b.clientCertificate(Path.of(s.cert()), Path.of(s.key()));
    }
    if (s.token() != null) {
      b.token(s.token());
    }
    return b.build();
  }

  private record ChoirStore(SharedClients.Lease<ChoirClient> lease, ReadConsistency consistency) implements Store {
    @Override
    public Stored get(byte[] key) {
      Optional<VersionedValue> v = lease.client().get(key, consistency);
      return v.map(x -> new Stored(x.value(), x.version())).orElse(null);
    }

    @Override
    public void put(byte[] key, byte[] value) {
      lease.client().put(key, value);
    }

    @Override
    public boolean replace(byte[] key, Stored read, byte[] value) {
      try {
        lease.client().compareAndSetVersion(key, read.version(), value);
        return true;
      } catch (CasFailedException changed) {
        return false;
      }
    }

    @Override
    public boolean delete(byte[] key) {
      return lease.client().delete(key);
    }

    @Override
    public List<byte[]> scan(byte[] start, byte[] end, int limit) {
      return lease.client().scan(start, end, limit, consistency).entries().stream().map(KeyValueVersion::value)
          .toList();
    }

    @Override
    public Status statusOf(RuntimeException e) {
      if (e instanceof UnavailableException || e instanceof BusyException) {
        return Status.SERVICE_UNAVAILABLE;
      }
      if (e instanceof ChoirTimeoutException) {
        return new Status("TIMEOUT", "outcome unknown: " + e.getMessage());
      }
      return new Status("ERROR", e.getClass().getSimpleName() + ": " + e.getMessage());
    }

    @Override
    public void close() {
      lease.release();
    }
  }
}
