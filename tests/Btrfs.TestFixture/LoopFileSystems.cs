namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.Collections.Generic;
    using System.IO;
    using System.Linq;
    using System.Runtime.InteropServices;
    using System.Threading;

    /// <summary>The test filesystems, each mounted at its own unique mount point.</summary>
    public enum TestFs
    {
        /// <summary>btrfs, default mount options.</summary>
        Btrfs,

        /// <summary>btrfs mounted with compress=zstd.</summary>
        BtrfsZstd,

        /// <summary>xfs made with -m reflink=1.</summary>
        Xfs,

        /// <summary>ext4.</summary>
        Ext4,

        /// <summary>tmpfs: no FIEMAP.</summary>
        Tmpfs,
    }

    /// <summary>
    /// Creates loop-mounted btrfs (plain and compress=zstd), xfs (reflink=1) and ext4 images plus a
    /// tmpfs under /tmp/btrfs-module-tests/&lt;pid&gt;-&lt;random&gt;/, and always removes them: on Dispose,
    /// on process exit, on SIGTERM/SIGINT, and (for runs that were killed outright) by sweeping the
    /// leftovers of dead processes when the next fixture starts. Loop devices come from
    /// mount -o loop, which sets autoclear: unmounting detaches them.
    /// </summary>
    public sealed class LoopFileSystems : IDisposable
    {
        internal const string BaseDir = "/tmp/btrfs-module-tests";

        private static readonly (TestFs Fs, string Image, string Size, string[] Mkfs, string Options)[] Specs =
        {
            (TestFs.Btrfs, "btrfs.img", "6G", new[] { "mkfs.btrfs", "-q", "-f" }, string.Empty), // sparse on the host: room for the whole suite's files
            (TestFs.BtrfsZstd, "btrfs-zstd.img", "512M", new[] { "mkfs.btrfs", "-q", "-f" }, "compress=zstd"),
            (TestFs.Xfs, "xfs.img", "1G", new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=1" }, string.Empty),
            (TestFs.Ext4, "ext4.img", "512M", new[] { "mkfs.ext4", "-q", "-F" }, string.Empty),
        };

        private readonly object gate = new();
        private readonly Dictionary<TestFs, string> mounts = new();
        private readonly Dictionary<TestFs, string> unavailable = new();
        private readonly PosixSignalRegistration[] signals;
        private int counter;
        private bool cleaned;

        /// <summary>
        /// What happens when a test asks for a filesystem this machine could not make: by default an
        /// exception with the reason; the xunit tests make it a skip (or, in CI, a failure), and the
        /// Pester suite decides for itself.
        /// </summary>
        public static Action<string> Unavailable { get; set; } = reason => throw new InvalidOperationException(reason);

        public LoopFileSystems()
        {
            Root = Path.Combine(BaseDir, $"{Environment.ProcessId}-{Guid.NewGuid():N}"[..20]);
            signals = new[]
            {
                PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => Cleanup()),
                PosixSignalRegistration.Create(PosixSignal.SIGINT, _ => Cleanup()),
            };
            AppDomain.CurrentDomain.ProcessExit += OnProcessExit;

            string? whyNot = Environment.UserName != "root" && geteuid() != 0 ? "loop mounts need root (run the tests as root)" : null;
            if (whyNot is null)
            {
                SweepLeftovers();
                Directory.CreateDirectory(Root);
                File.SetUnixFileMode(BaseDir, (UnixFileMode)0x1ED); // 0755: a dropped-privilege test must reach its files
                File.SetUnixFileMode(Root, (UnixFileMode)0x1ED);
            }

            foreach (var spec in Specs)
            {
                Setup(spec.Fs, whyNot, () =>
                {
                    string image = Path.Combine(Root, spec.Image);
                    string mnt = Path.Combine(Root, spec.Fs.ToString().ToLowerInvariant());
                    Shell.Run("truncate", "-s", spec.Size, image);
                    Shell.Run(spec.Mkfs[0], spec.Mkfs.Skip(1).Append(image).ToArray());
                    Directory.CreateDirectory(mnt);
                    var args = new List<string> { "-o", spec.Options.Length > 0 ? "loop," + spec.Options : "loop", image, mnt };
                    Shell.Run("mount", args.ToArray());
                    return mnt;
                });
            }

            Setup(TestFs.Tmpfs, whyNot, () =>
            {
                string mnt = Path.Combine(Root, "tmpfs");
                Directory.CreateDirectory(mnt);
                Shell.Run("mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", mnt);
                return mnt;
            });
        }

        /// <summary>The unique directory holding this run's images and mount points.</summary>
        public string Root { get; }

        /// <summary>A new empty directory on <paramref name="fs"/>; skips (or fails in CI) when the filesystem could not be made.</summary>
        public string NewDirectory(TestFs fs, string hint = "t")
        {
            string mount;
            lock (gate)
            {
                if (!mounts.ContainsKey(fs))
                {
                    Unavailable(unavailable.TryGetValue(fs, out string? why) ? $"no {fs} test filesystem: {why}" : $"no {fs} test filesystem");
                }

                mount = mounts[fs];
            }

            string dir = Path.Combine(mount, $"{hint}-{Interlocked.Increment(ref counter)}");
            Directory.CreateDirectory(dir);
            return dir;
        }

        /// <summary>
        /// A filesystem of its own for a test that changes how it is mounted or fills it up: a loop
        /// image under <see cref="Root"/> (so the fixture's cleanup covers it), unmounted on Dispose.
        /// </summary>
        public ExtraFileSystem NewFileSystem(string mkfs, string size, string options = "")
        {
            int n = NextExtra();
            string image = Path.Combine(Root, $"extra-{n}.img");
            string mnt = Path.Combine(Root, $"extra-{n}");
            Shell.Run("truncate", "-s", size, image);
            string[] mk = mkfs switch
            {
                "btrfs" => new[] { "mkfs.btrfs", "-q", "-f" },
                "btrfs-holes" => new[] { "mkfs.btrfs", "-q", "-f", "-O", "^no-holes" },
                "btrfs-xxhash" => new[] { "mkfs.btrfs", "-q", "-f", "--csum", "xxhash" },
                "btrfs-sha256" => new[] { "mkfs.btrfs", "-q", "-f", "--csum", "sha256" },
                "btrfs-blake2" => new[] { "mkfs.btrfs", "-q", "-f", "--csum", "blake2" },
                "xfs" => new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=1" },
                "xfs-noreflink" => new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=0" },
                "xfs-plain" => new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=0,rmapbt=0" },
                "xfs-rmapbt" => new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=1,rmapbt=1" },
                "xfs-exchange" => new[] { "mkfs.xfs", "-q", "-f", "-m", "reflink=1" },
                "ext4" => new[] { "mkfs.ext4", "-q", "-F", "-m", "0" }, // no root reserve: "free" means free
                "ext4-1k" => new[] { "mkfs.ext4", "-q", "-F", "-m", "0", "-b", "1024" }, // blocks smaller than a page
                "ext4-128" => new[] { "mkfs.ext4", "-q", "-F", "-m", "0", "-I", "128" }, // 128-byte inodes: times in whole seconds
                _ => throw new ArgumentException(mkfs),
            };
            Shell.Run(mk[0], mk.Skip(1).Append(image).ToArray());
            if (mkfs == "xfs-exchange")
            {
                // mkfs.xfs 6.1 cannot make the exchange-range feature (XFS_SB_FEAT_INCOMPAT_EXCHRANGE,
                // 1 << 6); it has no on-disk format of its own, so set the bit and the kernel (6.10+) uses it.
                string current = Shell.Run("xfs_db", "-c", "sb 0", "-c", "print features_incompat", image).Split('=')[1].Trim();
                ulong incompat = Convert.ToUInt64(current, 16) | 0x40;
                Shell.Run("xfs_db", "-x", "-c", "sb 0", "-c", $"write -d features_incompat 0x{incompat:x}", image);
            }

            Directory.CreateDirectory(mnt);
            Shell.Run("mount", "-o", options.Length > 0 ? "loop," + options : "loop", image, mnt);
            return new ExtraFileSystem(mnt, image);
        }

        /// <summary>The number of a test's own filesystem (its image and mount point); skipped (or failed under CI) where there are no loop filesystems.</summary>
        private int NextExtra()
        {
            lock (gate)
            {
                if (!mounts.ContainsKey(TestFs.Btrfs))
                {
                    Unavailable(unavailable.TryGetValue(TestFs.Btrfs, out string? why) ? $"no loop filesystems: {why}" : "no loop filesystems");
                }
            }

            return Interlocked.Increment(ref counter);
        }

        /// <summary>A btrfs on two loop devices (data and metadata profiles as given to mkfs.btrfs).</summary>
        public ExtraFileSystem NewTwoDeviceBtrfs(string size, string dataProfile)
        {
            int n = NextExtra();
            string a = Path.Combine(Root, $"multi-{n}-a.img");
            string b = Path.Combine(Root, $"multi-{n}-b.img");
            string mnt = Path.Combine(Root, $"multi-{n}");
            Shell.Run("truncate", "-s", size, a);
            Shell.Run("truncate", "-s", size, b);
            string la = Shell.Run("losetup", "-f", "--show", a).Trim();
            string lb = Shell.Run("losetup", "-f", "--show", b).Trim();
            Shell.Run("mkfs.btrfs", "-q", "-f", "-d", dataProfile, "-m", "raid1", la, lb);
            Shell.Try("btrfs", "device", "scan", la, lb);
            Directory.CreateDirectory(mnt);
            Shell.Run("mount", la, mnt);
            return new ExtraFileSystem(mnt, a, new[] { la, lb }, b);
        }

        /// <summary>
        /// A btrfs sprouted from a seed (btrfstune -S 1): <paramref name="fillSeed"/> fills the seed at its mount
        /// point first; then the seed is mounted (read-only, as a seed is), a second loop device is added and the
        /// filesystem remounted read-write, so its old blocks are on the seed and carry the seed's fsid.
        /// </summary>
        public ExtraFileSystem NewSproutedBtrfs(string size, Action<string> fillSeed)
        {
            int n = NextExtra();
            string seed = Path.Combine(Root, $"seed-{n}.img");
            string sprout = Path.Combine(Root, $"seed-{n}-sprout.img");
            string mnt = Path.Combine(Root, $"seed-{n}");
            Shell.Run("truncate", "-s", size, seed);
            Shell.Run("truncate", "-s", size, sprout);
            Shell.Run("mkfs.btrfs", "-q", "-f", seed);
            Directory.CreateDirectory(mnt);
            Shell.Run("mount", "-o", "loop", seed, mnt);
            try
            {
                fillSeed(mnt);
            }
            finally
            {
                Shell.Run("umount", mnt);
            }

            Shell.Run("btrfstune", "-S", "1", seed);
            string ls = Shell.Run("losetup", "-f", "--show", seed).Trim();
            string lp = Shell.Run("losetup", "-f", "--show", sprout).Trim();
            var made = new ExtraFileSystem(mnt, seed, new[] { ls, lp }, sprout);
            try
            {
                Shell.Run("mount", ls, mnt);
                Shell.Run("btrfs", "device", "add", "-f", lp, mnt);
                Shell.Run("mount", "-o", "remount,rw", mnt);
            }
            catch
            {
                made.Dispose();
                throw;
            }

            return made;
        }

        /// <summary>The block device a mounted test filesystem lives on (a loop device).</summary>
        public string DeviceOf(TestFs fs)
        {
            string mnt = mounts[fs];
            foreach (string line in File.ReadLines("/proc/self/mountinfo"))
            {
                string[] f = line.Split(' ');
                int dash = Array.IndexOf(f, "-");
                if (f[4] == mnt && dash > 0)
                {
                    return f[dash + 2];
                }
            }

            throw new InvalidOperationException("not mounted: " + mnt);
        }

        public void Dispose()
        {
            Cleanup();
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            foreach (var s in signals)
            {
                s.Dispose();
            }
        }

        /// <summary>Switches off every swapfile under <paramref name="dir"/> (a test that failed half-way must not keep a mount busy).</summary>
        internal static void SwapOffUnder(string dir)
        {
            foreach (string line in File.ReadLines("/proc/swaps").Skip(1))
            {
                string path = line.Split(' ', 2)[0].Replace("\\040", " ");
                if (path.StartsWith(dir + "/", StringComparison.Ordinal))
                {
                    Shell.Try("swapoff", path);
                }
            }
        }

        /// <summary>Unmounts everything under <paramref name="dir"/> (deepest first) and removes it.</summary>
        internal static void Teardown(string dir)
        {
            SwapOffUnder(dir);
            foreach (string mnt in MountsUnder(dir).OrderByDescending(m => m.Length))
            {
                if (Shell.Try("umount", mnt).ExitCode != 0)
                {
                    Shell.Try("umount", "-l", mnt);
                }
            }

            // Loop devices still bound to images here (mount -o loop autoclears, losetup may not have).
            foreach (string line in Shell.Try("losetup", "-n", "-O", "NAME,BACK-FILE").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] parts = line.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                if (parts.Length == 2 && parts[1].StartsWith(dir + "/", StringComparison.Ordinal))
                {
                    Shell.Try("losetup", "-d", parts[0]);
                }
            }

            if (!MountsUnder(dir).Any())
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }

        internal static IEnumerable<string> MountsUnder(string dir) =>
            File.ReadLines("/proc/self/mountinfo")
                .Select(l => l.Split(' ')[4].Replace("\\040", " "))
                .Where(m => m == dir || m.StartsWith(dir + "/", StringComparison.Ordinal))
                .ToList();

        [DllImport("libc")]
        private static extern uint geteuid();

        /// <summary>Removes what runs of processes that no longer exist left behind (a test host killed with SIGKILL).</summary>
        internal static void SweepLeftovers()
        {
            if (!Directory.Exists(BaseDir))
            {
                return;
            }

            foreach (string dir in Directory.GetDirectories(BaseDir))
            {
                string name = Path.GetFileName(dir);
                int dash = name.IndexOf('-');
                if (dash > 0 && int.TryParse(name[..dash], out int pid) && !Directory.Exists("/proc/" + pid))
                {
                    Teardown(dir);
                }
            }
        }

        private void Setup(TestFs fs, string? whyNot, Func<string> make)
        {
            if (whyNot is not null)
            {
                unavailable[fs] = whyNot;
                return;
            }

            try
            {
                mounts[fs] = make();
            }
            catch (Exception ex)
            {
                unavailable[fs] = ex.Message;
            }
        }

        private void OnProcessExit(object? sender, EventArgs e) => Cleanup();

        private void Cleanup()
        {
            lock (gate)
            {
                if (cleaned)
                {
                    return;
                }

                cleaned = true;
                mounts.Clear();
                if (Directory.Exists(Root))
                {
                    Teardown(Root);
                }
            }
        }
    }

    /// <summary>A test's own loop filesystem; unmounted and removed on Dispose.</summary>
    public sealed class ExtraFileSystem : IDisposable
    {
        private readonly string[] loops;
        private readonly string[] moreImages;

        internal ExtraFileSystem(string mountPoint, string image, string[]? loops = null, params string[] moreImages)
        {
            MountPoint = mountPoint;
            Image = image;
            this.loops = loops ?? Array.Empty<string>();
            this.moreImages = moreImages;
        }

        public string MountPoint { get; }

        public string Image { get; }

        /// <summary>Mounts only subvolume <paramref name="subvolume"/> of the filesystem at the mount point, instead of the top level.</summary>
        public void MountOnlySubvolume(string subvolume)
        {
            Shell.Run("umount", MountPoint);
            Shell.Run("mount", "-o", "loop,subvol=" + subvolume, Image, MountPoint);
        }

        /// <summary>
        /// A crash as the kernel sees one: everything written so far is synced (sync), then the
        /// filesystem is shut down (xfs_io -x -c shutdown: no more writes reach the disk, the log is
        /// not written back), unmounted and mounted again, so the next mount replays the log. Returns
        /// the mount's result (and leaves the filesystem unmounted when that failed).
        /// </summary>
        internal Shell.Result CrashAndRemount(bool syncFirst = true)
        {
            if (syncFirst)
            {
                Shell.Run("sync");
            }

            Shell.Run("xfs_io", "-x", "-c", "shutdown", MountPoint); // without -f: what is only in the log in memory is lost
            Shell.Run("umount", MountPoint);
            return Shell.Try("mount", "-o", "loop", Image, MountPoint);
        }

        /// <summary>`xfs_repair -n` of the image (unmounted for it, mounted again after): exit code 0 when the filesystem is clean.</summary>
        internal Shell.Result XfsRepairCheck()
        {
            Shell.Try("umount", MountPoint);
            Shell.Result r = Shell.Try("xfs_repair", "-n", Image);
            Shell.Run("mount", "-o", "loop", Image, MountPoint);
            return r;
        }

        /// <summary>Remounts read-only (or back to read-write).</summary>
        public void Remount(bool readOnly) => Shell.Run("mount", "-o", readOnly ? "remount,ro" : "remount,rw", MountPoint);

        public void Dispose()
        {
            LoopFileSystems.SwapOffUnder(MountPoint);
            if (Shell.Try("umount", MountPoint).ExitCode != 0)
            {
                Shell.Try("umount", "-l", MountPoint);
            }

            foreach (string loop in loops)
            {
                Shell.Try("losetup", "-d", loop);
            }

            try
            {
                Directory.Delete(MountPoint);
                File.Delete(Image);
                foreach (string more in moreImages)
                {
                    File.Delete(more);
                }
            }
            catch (IOException)
            {
            }
        }
    }

}
