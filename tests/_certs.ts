/**
 * Certificates for TLS tests, made with `openssl` in a temp dir: a CA, and a leaf for
 * 127.0.0.1 and localhost signed by it (Deno refuses a self-signed certificate used directly
 * as the end entity). `await using` removes the files.
 *
 * @module
 */
import { join } from "node:path";

/** A test CA and a leaf certificate it signed, as PEM files and their text. */
export interface TestCerts extends AsyncDisposable {
  /** The temp dir holding the files. */
  dir: string;
  /** The CA certificate (PEM file path): what a client trusts. */
  caCertFile: string;
  /** The leaf certificate for 127.0.0.1 and localhost (PEM file path): what a server serves. */
  certFile: string;
  /** The leaf's private key (PEM file path). */
  keyFile: string;
  /** The CA certificate's PEM text, for `Deno.connectTls({ caCerts })`. */
  caCert: string;
  /** The leaf certificate's PEM text. */
  cert: string;
  /** The leaf key's PEM text. */
  key: string;
}

/** Options of {@linkcode makeCerts}. */
export interface MakeCertsOptions {
  /** The leaf's common name; a second leaf under the same CA gets another. Default "chatd test". */
  commonName?: string;
  /** Days the certificates are valid. Default 2. */
  days?: number;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const output = await new Deno.Command("openssl", {
    args,
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(`openssl ${args[0]} failed (${output.code}): ${stderr}`);
  }
}

/**
 * Makes a CA and a leaf certificate for 127.0.0.1 and localhost in a new temp dir.
 *
 * @throws {Error} when openssl is missing or fails.
 */
export async function makeCerts(options: MakeCertsOptions = {}): Promise<TestCerts> {
  const { commonName = "chatd test", days = 2 } = options;
  const dir = await Deno.makeTempDir({ prefix: "chatd-certs-" });
  try {
    await openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      String(days),
      "-subj",
      "/CN=chatd test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await openssl(dir, [
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
      "-subj",
      `/CN=${commonName}`,
    ]);
    await Deno.writeTextFile(
      join(dir, "leaf.ext"),
      [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "",
      ].join("\n"),
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "leaf.crt",
      "-days",
      String(days),
      "-extfile",
      "leaf.ext",
    ]);
  } catch (error: unknown) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const caCertFile = join(dir, "ca.crt");
  const certFile = join(dir, "leaf.crt");
  const keyFile = join(dir, "leaf.key");
  return {
    dir,
    caCertFile,
    certFile,
    keyFile,
    caCert: await Deno.readTextFile(caCertFile),
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
