namespace Btrfs.Core
{
    using System;
    using System.Collections.Generic;
    using System.IO.Hashing;
    using System.Text;
    using Btrfs.Interop;
    using Btrfs.Kernel;

    /// <summary>
    /// What a file being replaced is, beyond its data (which the write lease guards): mode, owner, group, links, size, times,
    /// file attributes (chattr) and extended attributes (the module's own marks aside, as a hash of names and values). None of
    /// these needs the file open to change, so the lease does not stop a change; and the exchange moves the change time, so
    /// that cannot tell either: the replacement compares this, taken as the original is last checked, with what it is after
    /// the exchange (<see cref="TemporaryFile.BeginReplace"/>).
    /// </summary>
    internal readonly record struct ReplacedState(uint Mode, uint Uid, uint Gid, uint Links, long Size, FileTime ModifyTime, FileTime AccessTime, InodeFlags? Flags, ulong Xattrs)
    {
        /// <summary>The open file's state; null where it cannot be read.</summary>
        internal static ReplacedState? Of(SafeFileDescriptor fd, string path)
        {
            if (FileStatus.Of(fd) is not FileStatus st)
            {
                return null;
            }

            return new ReplacedState(st.Mode, st.Uid, st.Gid, st.Links, st.Size, st.ModifyTime, st.AccessTime, InodeAttributes.TryGet(fd, path), XattrsHash(fd, path));
        }

        /// <summary>What differs from <paramref name="before"/>, in words ("its mode, owner or group"), or null.</summary>
        internal string? Differs(in ReplacedState before) =>
            Mode != before.Mode || Uid != before.Uid || Gid != before.Gid ? "its mode, owner or group"
            : Links != before.Links ? $"its number of hard links (from {before.Links} to {Links})"
            : Size != before.Size || ModifyTime != before.ModifyTime || AccessTime != before.AccessTime ? "its size or times"
            : Flags != before.Flags ? "its file attributes (chattr)"
            : Xattrs != before.Xattrs ? "its extended attributes"
            : null;

        /// <summary>A hash of the names and values of the file's extended attributes but the module's own marks; 0 where they cannot be listed.</summary>
        private static ulong XattrsHash(SafeFileDescriptor fd, string path)
        {
            List<string> names;
            try
            {
                names = Kernel.Xattrs.List(fd, path);
            }
            catch (FileOperationException)
            {
                return 0;
            }

            names.RemoveAll(n => n.StartsWith(TemporaryFile.AttributePrefix, StringComparison.Ordinal));
            names.Sort(StringComparer.Ordinal);
            var hash = new XxHash64();
            foreach (string name in names)
            {
                hash.Append(Encoding.UTF8.GetBytes(name));
                hash.Append(new byte[] { 0 });
                byte[]? value;
                try
                {
                    value = Kernel.Xattrs.Get(fd, name, path);
                }
                catch (FileOperationException)
                {
                    value = null;
                }

                hash.Append(BitConverter.GetBytes(value?.Length ?? -1));
                hash.Append(value ?? Array.Empty<byte>());
            }

            return hash.GetCurrentHashAsUInt64();
        }
    }
}
