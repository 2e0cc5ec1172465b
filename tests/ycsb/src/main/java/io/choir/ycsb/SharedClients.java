package io.choir.ycsb;

import io.choir.client.ChoirClient;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * SharedClients hands YCSB's client threads a few shared Choir clients: for each distinct setting, the
 * given number of clients, made by the first thread that asks and closed when the last releases them;
 * each acquire takes the next in turn.
 */
final class SharedClients {
  /** What makes one set of clients. */
  record Settings(List<String> endpoints, int connections, long timeoutMs, String caCert, String cert,
      String key, String token) {}

  /** One thread's use of one of the shared clients. */
  static final class Lease {
    private final Settings settings;
    private final ChoirClient client;
    private boolean released;

    private Lease(Settings settings, ChoirClient client) {
      this.settings = settings;
      this.client = client;
    }

    ChoirClient client() {
      return client;
    }

    void release() {
      synchronized (SHARED) {
        if (released) {
          return;
        }
        released = true;
        Shared s = SHARED.get(settings);
        if (--s.users == 0) {
          SHARED.remove(settings);
          for (ChoirClient c : s.clients) {
            c.close();
          }
        }
      }
    }
  }

  private static final class Shared {
    final ChoirClient[] clients;
    int users;
    long next;

    Shared(ChoirClient[] clients) {
      this.clients = clients;
    }
  }

  private static final Map<Settings, Shared> SHARED = new HashMap<>();

  private SharedClients() {}

  static Lease acquire(Settings settings) {
    synchronized (SHARED) {
      Shared s = SHARED.get(settings);
      if (s == null) {
        ChoirClient[] clients = new ChoirClient[settings.connections()];
        for (int i = 0; i < clients.length; i++) {
          clients[i] = build(settings);
        }
        s = new Shared(clients);
        SHARED.put(settings, s);
      }
      s.users++;
      return new Lease(settings, s.clients[(int) (s.next++ % s.clients.length)]);
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
}
