namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Diagnostics;
    using Btrfs.Kernel;

    /// <summary>Another process that holds a file open or mapped, until disposed (killed).</summary>
    internal sealed class ChildProcess : IDisposable
    {
        private readonly Process process;
        private readonly System.Text.StringBuilder stderr = new();

        private ChildProcess(Process process) => this.process = process;

        internal int Pid => process.Id;

        /// <summary>What the child wrote to stderr so far (for failure messages).</summary>
        internal string StdErr
        {
            get
            {
                lock (stderr)
                {
                    return stderr.ToString();
                }
            }
        }

        /// <summary>A process with the file open read-only on fd 3 (as a VM keeps its image open).</summary>
        internal static ChildProcess HoldingOpen(string path) =>
            Start("bash", "-c", "exec 3<\"$1\"; echo ready; exec cat", "_", path);

        /// <summary>A process that has mapped the file and closed its descriptor (the mapping alone keeps it in use).</summary>
        internal static ChildProcess Mapping(string path) =>
            Start("python3", "-c", "import mmap,os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nm=mmap.mmap(fd,0,prot=mmap.PROT_READ)\nos.close(fd)\nprint('ready',flush=True)\nsys.stdin.read()", path);

        /// <summary>
        /// A process holding a write lease on the file (as a file server's oplock or delegation does): it ignores the
        /// kernel's request to give it up (SIGIO), so the lease stands until fs.lease-break-time passes or it exits.
        /// </summary>
        internal static ChildProcess LeaseHolder(string path) =>
            Start("python3", "-c", "import fcntl,os,signal,sys\nsignal.signal(signal.SIGIO,signal.SIG_IGN)\nfd=os.open(sys.argv[1],os.O_RDONLY)\nfcntl.fcntl(fd,fcntl.F_SETLEASE,fcntl.F_WRLCK)\nprint('ready',flush=True)\nsys.stdin.read()", path);

        /// <summary>
        /// A process that, again and again, opens (non-blocking, read-only) each hidden name of a replacement
        /// (".NAME.~btrfs-...") it sees in <paramref name="dir"/>, once per name: an opener that reaches a replaced file in
        /// its grace, or the new copy before the exchange.
        /// </summary>
        internal static ChildProcess OpeningHiddenNames(string dir) =>
            Start("python3", "-c", "import os,sys\nseen=set()\nprint('ready',flush=True)\nwhile True:\n  for e in os.scandir(sys.argv[1]):\n    if e.name.startswith('.') and '~btrfs-' in e.name and e.name not in seen:\n      seen.add(e.name)\n      try:\n        os.close(os.open(e.path,os.O_RDONLY|os.O_NONBLOCK))\n      except OSError:\n        pass", dir);

        /// <summary>
        /// A process with the file open for reading and writing (as a VM or a database keeps it):
        /// <see cref="WriteAt"/> makes it pwrite through that descriptor, as the process's next write would.
        /// </summary>
        internal static ChildProcess Writer(string path) =>
            Start("python3", "-c", "import os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\nprint('ready',flush=True)\nfor line in sys.stdin:\n  off,text=line.rstrip('\\n').split(' ',1)\n  os.pwrite(fd,text.encode(),int(off))\n  os.fsync(fd)\n  print('ok',flush=True)", path);

        /// <summary>A <see cref="Writer"/> writes <paramref name="text"/> at <paramref name="offset"/> through its descriptor (and fsyncs).</summary>
        internal void WriteAt(long offset, string text)
        {
            process.StandardInput.WriteLine(offset.ToString(System.Globalization.CultureInfo.InvariantCulture) + " " + text);
            process.StandardInput.Flush();
            if (ReadLine(TimeSpan.FromSeconds(60)) != "ok")
            {
                throw new InvalidOperationException("the writer did not write: " + StdErr);
            }
        }

        /// <summary>Writes a line to the child's standard input.</summary>
        internal void Send(string line)
        {
            process.StandardInput.WriteLine(line);
            process.StandardInput.Flush();
        }

        /// <summary>Waits for the process to end; its exit code.</summary>
        internal int WaitForExit(TimeSpan timeout)
        {
            if (!process.WaitForExit(timeout))
            {
                throw new TimeoutException("the child did not end: " + StdErr);
            }

            return process.ExitCode;
        }

        /// <summary>Starts a command and waits for its first output line ("ready").</summary>
        internal static ChildProcess Start(string file, params string[] args)
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in args)
            {
                psi.ArgumentList.Add(a);
            }

            var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
            var child = new ChildProcess(p);
            p.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (child.stderr)
                    {
                        child.stderr.AppendLine(e.Data);
                    }
                }
            };
            p.BeginErrorReadLine();
            var line = p.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(30)) || line.Result is null)
            {
                child.Dispose();
                throw new InvalidOperationException($"{file} did not get ready");
            }

            return child;
        }

        /// <summary>Reads the next line the child prints.</summary>
        internal string? ReadLine(TimeSpan timeout)
        {
            var line = process.StandardOutput.ReadLineAsync();
            return line.Wait(timeout) ? line.Result : null;
        }

        internal void Kill()
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
        }

        public void Dispose()
        {
            Kill();
            process.Dispose();
        }
    }
}
