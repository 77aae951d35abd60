namespace Btrfs.Core
{
    using System.Collections.Generic;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// What many copies of one run share, read once: the mount table, the active swapfiles, the
    /// statfs of each device, and the facts about each destination directory (filesystem, mount,
    /// NOCOW attribute, read-only state). Also remembers the filesystems written to, for one sync at the end.
    /// </summary>
    public sealed class ReflinkSession : System.IDisposable
    {
        private readonly Dictionary<string, DirectoryFacts> directories = new(System.StringComparer.Ordinal);
        private readonly Dictionary<(uint, uint), DirectoryFacts> written = new();
        private readonly HashSet<string> created = new(System.StringComparer.Ordinal);
        private readonly HashSet<string> replacedIn = new(System.StringComparer.Ordinal);
        private string? stagedRoot;
        private MountTable? mounts;
        private SwapTable? swaps;

        internal FileSystemCache FileSystems { get; } = new();

        internal MountTable Mounts => mounts ??= MountTable.Read();

        internal SwapTable Swaps => swaps ??= SwapTable.Read();

        internal void Wrote(DirectoryFacts dir) => written.TryAdd(dir.Device, dir);

        /// <summary>
        /// Writes back every filesystem this session wrote to (syncfs), once at the end, through the
        /// descriptor of a directory it wrote into (never its path again: it may have been renamed or
        /// swapped meanwhile). Returns the failures, one per filesystem.
        /// </summary>
        public IReadOnlyList<FileOperationException> Flush()
        {
            var failures = new List<FileOperationException>();
            foreach (DirectoryFacts dir in written.Values)
            {
                try
                {
                    Files.SyncFileSystem(dir.Handle, dir.Path, "The copies were made, but cannot write back the filesystem of", "Run sync before relying on them after a crash.");
                }
                catch (FileOperationException ex)
                {
                    failures.Add(ex);
                }
            }

            written.Clear();
            return failures;
        }

        /// <summary>The caller created this directory in this session (a mirrored tree): it holds only this run's files.</summary>
        public void CreatedDirectory(string path) => created.Add(path);

        internal bool IsNewDirectory(string path) => created.Contains(path);

        /// <summary>True the first time a file in <paramref name="directory"/> is replaced in this session (its leftovers are looked for then).</summary>
        internal bool FirstReplaceIn(string directory) => replacedIn.Add(directory);

        /// <summary>
        /// The tree at (final path) <paramref name="root"/> is being built hidden (a <see cref="StagingDirectory"/>)
        /// and appears whole at the end: its files are created under their names directly, without an
        /// unnamed file and a link each. Null when no tree is staged.
        /// </summary>
        internal void Staging(string? root) => stagedRoot = root;

        /// <summary>The directory (by final path) lies in the tree being staged.</summary>
        internal bool IsStaged(string path) =>
            stagedRoot is string root && (path == root || (path.StartsWith(root, System.StringComparison.Ordinal) && path.Length > root.Length && path[root.Length] == '/'));

        /// <summary>Closes the directories kept open.</summary>
        public void Dispose()
        {
            foreach (DirectoryFacts d in directories.Values)
            {
                d.Handle?.Dispose();
            }

            directories.Clear();
        }

        /// <summary>
        /// The facts about a destination directory; throws the same refusal for every file going there.
        /// With <paramref name="open"/> (a directory a tree mirror created or opened relative to its
        /// parent) the facts are read through that descriptor, never through the path.
        /// </summary>
        internal DirectoryFacts Directory(string path, SafeFileDescriptor? open = null)
        {
            if (!directories.TryGetValue(path, out DirectoryFacts? facts))
            {
                facts = DirectoryFacts.Read(path, this, open);
                directories[path] = facts;
            }

            if (facts.Refusal is FileOperationException refused)
            {
                throw refused;
            }

            return facts;
        }
    }

    /// <summary>One destination directory, as a copy into it needs to know it.</summary>
    internal sealed class DirectoryFacts
    {
        private DirectoryFacts(string path)
        {
            Path = path;
        }

        internal string Path { get; }

        internal FileSystemType FileSystem { get; private set; }

        internal MountEntry? Mount { get; private set; }

        internal bool NoCow { get; private set; }

        /// <summary>The directory has the compression attribute (new files inherit it).</summary>
        internal bool Compress { get; private set; }

        /// <summary>The directory, open for the session (new files are created relative to it).</summary>
        internal SafeFileDescriptor Handle { get; private set; } = null!;

        internal (uint, uint) Device { get; private set; }

        internal FileOperationException? Refusal { get; private set; }

        /// <summary>Free space now (read each time: it changes as copies are made).</summary>
        internal long AvailableBytes()
        {
            using OpenFile dir = OpenFile.FromDirectory(Handle, Path);
            return dir.AvailableBytes();
        }

        /// <summary>Free space now, read again after a commit where less than <paramref name="needed"/> is free.</summary>
        internal long AvailableBytes(long needed)
        {
            using OpenFile dir = OpenFile.FromDirectory(Handle, Path);
            return dir.AvailableBytes(needed);
        }

        /// <summary>The refusal of a destination <paramref name="destination"/> whose way passes <paramref name="at"/>, another user's symbolic link.</summary>
        internal static FileOperationException ThroughAnotherUsersLink(string destination, string at, string why) => new(
            FileErrorKind.IsSymbolicLink,
            Errno.ELOOP,
            "openat",
            destination,
            $"Cannot copy to '{destination}': '{at}' {why}, so the copies would go wherever that user makes it lead. Nothing was copied. Give the path it leads to if that is where they belong.");

        internal static DirectoryFacts Read(string path, ReflinkSession session, SafeFileDescriptor? open = null)
        {
            var facts = new DirectoryFacts(path);
            OpenFile dir;
            try
            {
                if (open is not null)
                {
                    dir = OpenFile.FromDirectory(open, path);
                }
                else
                {
                    // Links on the way followed only where root or this user made them, each checked as it is followed.
                    using SafeFileDescriptor reached = DirectoryHandle.OpenFollowingTrustedLinks(path, Metadata.FileSystemUserId, (at, why) => ThroughAnotherUsersLink(path, at, why));
                    dir = OpenFile.FromDirectory(reached, path);
                }
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.IsSymbolicLink)
            {
                facts.Refusal = ex;
                return facts;
            }
            catch (FileOperationException ex) when (ex.Kind is FileErrorKind.NotFound)
            {
                facts.Refusal = new FileOperationException(FileErrorKind.NotFound, ex.Errno, "stat", path, $"Cannot create files in '{path}': the directory does not exist. Create it first.");
                return facts;
            }
            catch (FileOperationException ex)
            {
                facts.Refusal = DirectoryHandle.CannotCreateIn(ex, path, path, $"create files in '{path}'");
                return facts;
            }

            using (dir)
            {
                return facts.Fill(dir, session);
            }
        }

        private DirectoryFacts Fill(OpenFile dir, ReflinkSession session)
        {
            string path = Path;
            var facts = this;
            if (!dir.IsDirectory)
            {
                facts.Refusal = new FileOperationException(FileErrorKind.NotFound, Errno.ENOTDIR, "stat", path, $"Cannot create files in '{path}': it is not a directory.");
                return facts;
            }

            try
            {
                FileGuards.ThrowIfReadOnly(dir, "create a file in {0}");
            }
            catch (FileOperationException ex)
            {
                facts.Refusal = ex;
                return facts;
            }

            facts.FileSystem = dir.FileSystem;
            facts.Mount = session.Mounts.For(dir);
            facts.Device = (dir.Status.DevMajor, dir.Status.DevMinor);
            InodeFlags flags = dir.FileSystem.Kind == FileSystemKind.Btrfs ? InodeAttributes.Get(dir.Handle, path) : InodeFlags.None;
            facts.NoCow = (flags & InodeFlags.NoCow) != 0;
            facts.Compress = (flags & InodeFlags.Compress) != 0;
            try
            {
                // The directory's own descriptor (the one just examined), kept for the session.
                facts.Handle = DirectoryHandle.Duplicate(dir.Handle, path);
            }
            catch (FileOperationException ex)
            {
                facts.Refusal = ex;
            }

            return facts;
        }
    }
}
