/**
 * The Choir Java client: a thread-safe blocking API ({@link io.choir.client.ChoirClient}) and an async
 * one ({@link io.choir.client.AsyncChoirClient}) over one multiplexed TCP connection per replica. The
 * client finds the primary by itself (following NOT_PRIMARY redirects and the newest view's hints,
 * leaving a replica that does not answer within the attempt timeout), retries on failures with the
 * same request id inside a session on the replicas so every write happens at most once, and reports
 * failures as typed, unchecked exceptions under {@link io.choir.client.ChoirException}: a
 * {@link io.choir.client.ChoirTimeoutException} (or {@link io.choir.client.SessionExpiredException})
 * when the outcome is unknown, every other one when it is certain. With TLS
 * ({@code trustCertificates}, {@code clientCertificate} or {@code sslContext} on the builder) and a
 * {@code token}, every connection is set up (handshake, then the token) before it carries a request,
 * and again after every reconnect; a request the replicas' access file does not allow fails with
 * {@link io.choir.client.PermissionDeniedException} (not executed), a TLS failure with
 * {@link io.choir.client.TlsException} (not executed), both at once rather than after the timeout.
 * {@code membership()} lists and changes the members ({@link io.choir.client.MembershipClient}); a
 * change the primary refuses fails with {@link io.choir.client.MemberChangeRefusedException} (not
 * executed).
 *
 * <pre>{@code
 * try (ChoirClient client = ChoirClient.builder()
 *     .endpoints("10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000")
 *     .requestTimeout(Duration.ofSeconds(5))
 *     .trustCertificates(Path.of("ca.crt"))                          // TLS; the replicas' CA
 *     .clientCertificate(Path.of("client.crt"), Path.of("client.key")) // mutual TLS (optional)
 *     .build()) {
 *   long version = client.put("user/42", "alice");
 *
 *   Optional<VersionedValue> user = client.get("user/42");          // empty when absent
 *   String name = user.map(VersionedValue::valueAsString).orElse("?");
 *
 *   try {
 *     client.compareAndSetVersion("user/42", version, "alice smith"); // optimistic update
 *   } catch (CasFailedException e) {
 *     long current = e.currentVersion();                              // someone else wrote first
 *   }
 *
 *   ScanResult page = client.scan("user/", "user0", 100);             // keys in [user/, user0)
 *   for (KeyValueVersion kv : page.entries()) {
 *     String key = kv.keyAsString();
 *   }
 *
 *   client.async().put("counter", "1").thenAccept(v -> { });         // non-blocking form
 * }                                                                     // close() on exit
 * }</pre>
 */
package io.choir.client;
