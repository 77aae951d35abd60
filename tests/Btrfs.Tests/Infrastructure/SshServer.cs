namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Diagnostics;
    using System.IO;
    using System.Net;
    using System.Net.Sockets;
    using Btrfs.Kernel;

    /// <summary>
    /// An sshd of the test's own on a free loopback port, with its own host key, configuration and
    /// client key (root may log in with the key only), and pwsh as its "powershell" subsystem, as
    /// README's fleet section sets it up. It runs in the foreground as a child process and is stopped
    /// by its PID on Dispose; its files live under the fixture's base directory, which CI removes.
    /// </summary>
    internal sealed class SshServer : IDisposable
    {
        private readonly Process sshd;

        private SshServer(string dir, int port, Process sshd)
        {
            Directory = dir;
            Port = port;
            this.sshd = sshd;
        }

        internal string Directory { get; }

        internal int Port { get; }

        /// <summary>The private key the client logs in with.</summary>
        internal string KeyFile => Path.Combine(Directory, "user_key");

        internal static SshServer Start()
        {
            string sshdPath = "/usr/sbin/sshd";
            Requires.That(File.Exists(sshdPath) && Shell.Exists("ssh") && Shell.Exists("ssh-keygen"), "openssh-server and openssh-client are not installed (.ci/run installs them)");
            string? pwsh = RealPwsh.ToolDirectory;
            Requires.That(pwsh is not null, "pwsh 7.6 is not installed (.ci/run installs it)");
            string dir = Path.Combine(LoopFileSystems.BaseDir, $"sshd-{Environment.ProcessId}-{Guid.NewGuid():N}"[..32]);
            System.IO.Directory.CreateDirectory(dir);
            Shell.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", Path.Combine(dir, "host_key"));
            Shell.Run("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-f", Path.Combine(dir, "user_key"));
            File.Copy(Path.Combine(dir, "user_key.pub"), Path.Combine(dir, "authorized_keys"));
            System.IO.Directory.CreateDirectory("/run/sshd"); // sshd's privilege separation directory

            int port = FreePort();
            string dotnet = Shell.Run("sh", "-c", "command -v dotnet").Trim();
            File.WriteAllText(Path.Combine(dir, "sshd_config"), string.Join('\n', new[]
            {
                $"Port {port}",
                "ListenAddress 127.0.0.1",
                $"HostKey {dir}/host_key",
                $"PidFile {dir}/sshd.pid",
                $"AuthorizedKeysFile {dir}/authorized_keys",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                $"Subsystem powershell {dotnet} {pwsh}/pwsh.dll -sshs -NoLogo -NoProfile",
                string.Empty,
            }));

            var psi = new ProcessStartInfo(sshdPath) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string a in new[] { "-D", "-e", "-f", Path.Combine(dir, "sshd_config") })
            {
                psi.ArgumentList.Add(a);
            }

            Process p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start sshd");
            var server = new SshServer(dir, port, p);
            var stderr = new System.Text.StringBuilder();
            p.ErrorDataReceived += (_, e) =>
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            };
            p.BeginErrorReadLine();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(60)) // sshd can take seconds to listen on a loaded machine
            {
                if (p.HasExited)
                {
                    throw new InvalidOperationException("sshd ended: " + stderr);
                }

                using var probe = new TcpClient();
                try
                {
                    probe.Connect(IPAddress.Loopback, port);
                    return server;
                }
                catch (SocketException)
                {
                    System.Threading.Thread.Sleep(50);
                }
            }

            server.Dispose();
            throw new TimeoutException("sshd did not listen: " + stderr);
        }

        public void Dispose()
        {
            if (!sshd.HasExited)
            {
                sshd.Kill(); // by PID: our sshd only
                sshd.WaitForExit();
            }

            sshd.Dispose();
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }

        private static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }
    }
}
