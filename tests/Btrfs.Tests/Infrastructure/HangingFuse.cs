namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Buffers.Binary;
    using System.Collections.Generic;
    using System.IO;
    using System.Runtime.InteropServices;
    using System.Threading;

    /// <summary>
    /// A FUSE filesystem that stops answering, as a stale sshfs or NFS mount does: one read-only file, `f`,
    /// whose attributes are never cached (every stat asks the daemon), served by a thread of this process
    /// speaking the FUSE protocol on /dev/fuse. After <see cref="Hang"/> the daemon withholds its answers to
    /// GETATTR of `f`: whoever stats it waits in the kernel until <see cref="Dispose"/> answers them. After
    /// <see cref="HangAll"/> it withholds every answer, as a mount whose server went away: a lookup, stat or
    /// open of anything on it, the mount point included, waits.
    /// </summary>
    internal sealed class HangingFuse : IDisposable
    {
        private const uint Lookup = 1, Forget = 2, GetAttr = 3, Open = 14, ReleaseFile = 18, Flush = 25, Init = 26, OpenDir = 27, ReleaseDir = 29, Interrupt = 36, Destroy = 38, BatchForget = 42, Statx = 52;
        private const ulong RootNode = 1, FileNode = 2;
        private const int ENOENT = 2, ENOSYS = 38;

        private readonly int fd;
        private readonly Thread daemon;
        private readonly object gate = new();
        private readonly List<byte[]> withheld = new();
        private bool hanging;
        private bool hangingAll;
        private bool fileRoot;
        private bool mounted;

        private HangingFuse(string mountPoint, int fd)
        {
            MountPoint = mountPoint;
            this.fd = fd;
            daemon = new Thread(Serve) { IsBackground = true, Name = "hanging FUSE daemon" };
        }

        /// <summary>Where it is mounted; the file is <see cref="FilePath"/>.</summary>
        internal string MountPoint { get; }

        internal string FilePath => Path.Combine(MountPoint, "f");

        /// <summary>
        /// Mounts one on <paramref name="mountPoint"/> (an empty directory; root only), for <paramref name="owner"/>;
        /// without <paramref name="allowOther"/> nobody else may enter it (root included).
        /// </summary>
        internal static HangingFuse Mount(string mountPoint, uint owner = 0, bool allowOther = true) => Mount(mountPoint, owner, allowOther, fileRoot: false);

        /// <summary>Mounts one on the regular file <paramref name="mountPoint"/>: its root is a file (as a bind mount of one file is), not a directory.</summary>
        internal static HangingFuse MountOnFile(string mountPoint) => Mount(mountPoint, 0, true, fileRoot: true);

        private static HangingFuse Mount(string mountPoint, uint owner, bool allowOther, bool fileRoot)
        {
            int fd = open("/dev/fuse", 2 /* O_RDWR */ | 0x80000 /* O_CLOEXEC */);
            Requires.That(fd >= 0, $"cannot open /dev/fuse (errno {Marshal.GetLastPInvokeError()})");
            var fuse = new HangingFuse(mountPoint, fd) { fileRoot = fileRoot };
            string options = $"fd={fd},rootmode={(fileRoot ? "100000" : "40000")},user_id={owner},group_id={owner}" + (allowOther ? ",allow_other" : string.Empty);
            if (mount("hangfs", mountPoint, "fuse.hangfs", 0x2 | 0x4 /* MS_NOSUID | MS_NODEV */, options) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                close(fd);
                throw new InvalidOperationException($"cannot mount the FUSE test filesystem on {mountPoint} (errno {errno})");
            }

            // The daemon only now: before the mount attaches the connection, a read of /dev/fuse fails (EPERM). The
            // kernel's first request (INIT) waits in the queue meanwhile.
            fuse.mounted = true;
            fuse.daemon.Start();
            return fuse;
        }

        /// <summary>From now on a stat of the file waits for an answer that does not come (until <see cref="Dispose"/>).</summary>
        internal void Hang()
        {
            lock (gate)
            {
                hanging = true;
            }
        }

        /// <summary>From now on no request is answered (until <see cref="Release"/> or <see cref="Dispose"/>).</summary>
        internal void HangAll()
        {
            lock (gate)
            {
                hanging = true;
                hangingAll = true;
            }
        }

        /// <summary>Requests withheld so far (someone is waiting in the kernel for each).</summary>
        internal int Withheld
        {
            get
            {
                lock (gate)
                {
                    return withheld.Count;
                }
            }
        }

        /// <summary>
        /// Runs <paramref name="work"/> on a thread of its own while the mount does not answer: whether it finished
        /// within <paramref name="patience"/>, and how many requests were withheld by then. Then everything is
        /// answered (<see cref="Release"/>), so work that was stuck goes on, and is given a minute to end.
        /// </summary>
        internal (bool Finished, int Withheld) Await(Action work, TimeSpan patience)
        {
            System.Threading.Tasks.Task run = System.Threading.Tasks.Task.Run(work);
            bool finished;
            int withheld;
            try
            {
                finished = ((IAsyncResult)run).AsyncWaitHandle.WaitOne(patience); // never throws: the answers below come first
                withheld = Withheld;
            }
            finally
            {
                Release(); // whatever happened: nobody (the holders ended when the test is disposed included) waits for the daemon
            }

            if (((IAsyncResult)run).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(60)) && run.IsFaulted)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(run.Exception!.InnerException!).Throw();
            }

            return (finished, withheld);
        }

        /// <summary>Answers every withheld request and answers all from now on: whoever waited goes on.</summary>
        internal void Release()
        {
            lock (gate)
            {
                hanging = false;
                hangingAll = false;
                foreach (byte[] request in withheld)
                {
                    Answer(request);
                }

                withheld.Clear();
            }
        }

        /// <summary>
        /// Releases, unmounts (lazily) and stops the daemon: once nobody holds the file any more the connection
        /// ends and its read returns ENODEV. The descriptor is closed only after the daemon stopped (never a
        /// number another part of the process may have been given meanwhile). Callers end the holders first.
        /// </summary>
        public void Dispose()
        {
            Release();
            if (!mounted)
            {
                return;
            }

            mounted = false;
            Shell.Try("umount", "-l", MountPoint);
            if (!daemon.IsAlive || daemon.Join(TimeSpan.FromSeconds(10)))
            {
                close(fd);
            }
        }

        private void Serve()
        {
            byte[] buffer = new byte[(1 << 20) + 4096];
            while (true)
            {
                int n = read(fd, buffer, (nuint)buffer.Length);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is 4 /* EINTR */ or 11 /* EAGAIN */ or ENOENT)
                    {
                        continue; // interrupted, or a request the kernel took back
                    }

                    return; // ENODEV: unmounted
                }

                if (n < 40)
                {
                    continue;
                }

                lock (gate)
                {
                    uint op = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4));
                    ulong target = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(16));
                    bool answered = op is Forget or BatchForget or Interrupt or Destroy or Init;
                    if (hanging && !answered && (hangingAll || (op == GetAttr && target == FileNode)))
                    {
                        withheld.Add(buffer.AsSpan(0, n).ToArray());
                        continue;
                    }

                    Answer(buffer.AsSpan(0, n));
                }
            }
        }

        private void Answer(ReadOnlySpan<byte> request)
        {
            uint opcode = BinaryPrimitives.ReadUInt32LittleEndian(request[4..]);
            ulong unique = BinaryPrimitives.ReadUInt64LittleEndian(request[8..]);
            ulong node = BinaryPrimitives.ReadUInt64LittleEndian(request[16..]);
            ReadOnlySpan<byte> body = request[40..];
            switch (opcode)
            {
                case Init:
                    {
                        byte[] init = new byte[64];
                        BinaryPrimitives.WriteUInt32LittleEndian(init, 7); // major
                        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(4), 31); // minor
                        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(8), BinaryPrimitives.ReadUInt32LittleEndian(body[8..])); // max_readahead as asked
                        BinaryPrimitives.WriteUInt16LittleEndian(init.AsSpan(16), 16); // max_background
                        BinaryPrimitives.WriteUInt16LittleEndian(init.AsSpan(18), 12); // congestion_threshold
                        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(20), 1 << 17); // max_write
                        BinaryPrimitives.WriteUInt32LittleEndian(init.AsSpan(24), 1); // time_gran
                        Reply(unique, 0, init);
                        break;
                    }

                case Lookup:
                    {
                        string name = System.Text.Encoding.UTF8.GetString(body[..body.IndexOf((byte)0)]);
                        if (node != RootNode || name != "f")
                        {
                            Reply(unique, -ENOENT, ReadOnlySpan<byte>.Empty);
                            break;
                        }

                        byte[] entry = new byte[40 + 88];
                        BinaryPrimitives.WriteUInt64LittleEndian(entry, FileNode); // nodeid
                        BinaryPrimitives.WriteUInt64LittleEndian(entry.AsSpan(16), 3600); // entry_valid: the name is cached
                        // attr_valid 0: the attributes are not, so every stat asks
                        Attr(FileNode).CopyTo(entry.AsSpan(40));
                        Reply(unique, 0, entry);
                        break;
                    }

                case GetAttr:
                    ReplyAttr(unique, node);
                    break;

                case Open:
                case OpenDir:
                    Reply(unique, 0, new byte[16]); // fh 0, no flags
                    break;

                case ReleaseFile:
                case ReleaseDir:
                case Flush:
                    Reply(unique, 0, ReadOnlySpan<byte>.Empty);
                    break;

                case Forget:
                case BatchForget:
                case Interrupt:
                case Destroy:
                    break; // no answer is expected

                case Statx:
                default:
                    Reply(unique, -ENOSYS, ReadOnlySpan<byte>.Empty); // STATX: the kernel falls back to GETATTR
                    break;
            }
        }

        private void ReplyAttr(ulong unique, ulong node)
        {
            byte[] attr = new byte[16 + 88];
            Attr(node).CopyTo(attr.AsSpan(16)); // attr_valid 0
            Reply(unique, 0, attr);
        }

        /// <summary>struct fuse_attr: the root directory (or file), or the empty read-only file.</summary>
        private byte[] Attr(ulong node)
        {
            byte[] a = new byte[88];
            BinaryPrimitives.WriteUInt64LittleEndian(a, node); // ino
            BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(60), node == RootNode && !fileRoot ? 0x41EDu : 0x8124u); // mode: drwxr-xr-x, -r--r--r--
            BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(64), node == RootNode ? 2u : 1u); // nlink
            BinaryPrimitives.WriteUInt32LittleEndian(a.AsSpan(80), 4096); // blksize
            return a;
        }

        private void Reply(ulong unique, int error, ReadOnlySpan<byte> body)
        {
            byte[] message = new byte[16 + body.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(message, (uint)message.Length);
            BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(4), error);
            BinaryPrimitives.WriteUInt64LittleEndian(message.AsSpan(8), unique);
            body.CopyTo(message.AsSpan(16));
            _ = write(fd, message, (nuint)message.Length); // a request already taken back (ENOENT) needs no answer
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int open(string path, int flags);

        [DllImport("libc", SetLastError = true)]
        private static extern int read(int fd, byte[] buffer, nuint count);

        [DllImport("libc", SetLastError = true)]
        private static extern int write(int fd, byte[] buffer, nuint count);

        [DllImport("libc", SetLastError = true)]
        private static extern int close(int fd);

        [DllImport("libc", SetLastError = true)]
        private static extern int mount(string source, string target, string type, ulong flags, string data);
    }
}
