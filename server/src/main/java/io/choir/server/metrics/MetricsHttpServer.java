package io.choir.server.metrics;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * MetricsHttpServer serves a replica's metrics_address with the JDK's HTTP server: GET /metrics (the
 * Prometheus text format), GET /health (200 while the replica serves, 503 once it refuses everything:
 * shutting down or stopped by a fatal error) and GET /ready (200 when {@link ReplicaSnapshot#notReadyReason}
 * finds nothing, else 503 with a short JSON reason). HEAD works as GET without a body; any other method
 * gets 405, any other path 404. Nothing a request carries besides its method and path is read. Two
 * handler threads; every answer is small.
 */
public final class MetricsHttpServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MetricsHttpServer.class);
  private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
  private static final String JSON = "application/json";

  private final HttpServer server;
  private final ExecutorService handlers;
  private final ReplicaMetrics metrics;

  private MetricsHttpServer(HttpServer server, ExecutorService handlers, ReplicaMetrics metrics) {
    this.server = server;
    this.handlers = handlers;
    this.metrics = metrics;
  }

  /** Listens on address (port 0: any free port) and serves metrics; fails when it cannot bind. */
  static MetricsHttpServer start(InetSocketAddress address, ReplicaMetrics metrics) throws IOException {
    HttpServer server = HttpServer.create(address, 16);
    AtomicInteger ids = new AtomicInteger();
    ExecutorService handlers = Executors.newFixedThreadPool(2, r -> {
      Thread t = new Thread(r, "choir-metrics-" + ids.incrementAndGet());
      t.setDaemon(true);
      return t;
    });
    MetricsHttpServer m = new MetricsHttpServer(server, handlers, metrics);
    server.setExecutor(handlers);
    server.createContext("/", m::handle);
    server.start();
    return m;
  }

  /** The address it listens on (the real port). */
  public InetSocketAddress address() {
    return server.getAddress();
  }

  private void handle(HttpExchange exchange) throws IOException {
    try (exchange) {
      String method = exchange.getRequestMethod();
      boolean head = method.equals("HEAD");
      if (!head && !method.equals("GET")) {
        exchange.getResponseHeaders().add("Allow", "GET, HEAD");
        answer(exchange, 405, JSON, "{\"error\":\"method not allowed\"}\n", false);
        return;
      }
      switch (exchange.getRequestURI().getPath()) {
        case "/metrics" -> answer(exchange, 200, PROMETHEUS_TEXT, metrics.scrape(), head);
        case "/health" -> {
          String reason = metrics.unhealthyReason();
          answer(exchange, reason == null ? 200 : 503, JSON, reason == null ? "{\"status\":\"ok\"}\n"
              : "{\"status\":\"failed\",\"reason\":" + quote(reason) + "}\n", head);
        }
        case "/ready" -> {
          String reason = metrics.notReadyReason();
          answer(exchange, reason == null ? 200 : 503, JSON, reason == null ? "{\"ready\":true}\n"
              : "{\"ready\":false,\"reason\":" + quote(reason) + "}\n", head);
        }
        default -> answer(exchange, 404, JSON, "{\"error\":\"not found: try /metrics, /health or /ready\"}\n", head);
      }
    } catch (IOException e) {
      log.atDebug().addKeyValue("reason", e.getMessage()).log("metrics request failed");
    } catch (RuntimeException e) {
      log.atWarn().setCause(e).log("metrics request failed");
    }
  }

  private static void answer(HttpExchange exchange, int code, String type, String body, boolean head)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type);
    exchange.getResponseHeaders().set("Cache-Control", "no-store");
    if (head) {
      exchange.sendResponseHeaders(code, -1);
      return;
    }
    exchange.sendResponseHeaders(code, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }

  /** s as a JSON string. */
  static String quote(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        b.append('\\').append(c);
      } else if (c < 0x20) {
        b.append(String.format("\\u%04x", (int) c));
      } else {
        b.append(c);
      }
    }
    return b.append('"').toString();
  }

  @Override
  public void close() {
    server.stop(0);
    handlers.shutdownNow();
    try {
      handlers.awaitTermination(1, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
