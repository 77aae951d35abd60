namespace Btrfs.Tests.Infrastructure
{
    using System.Globalization;
    using Btrfs.Core;
    using Btrfs.Kernel;

    /// <summary>Makes two files what a run killed in the grace after its exchange leaves, without running one.</summary>
    internal static class KilledReplacement
    {
        /// <summary>
        /// <paramref name="old"/> (under a hidden name of run <paramref name="stamp"/>) marked as the file that run replaced
        /// (its size and modification time), and <paramref name="now"/> (under the name) as that run's new copy, carrying
        /// the change time <paramref name="old"/> has once marked, as the run records it just after the exchange.
        /// </summary>
        internal static void Mark(string old, string now, string stamp)
        {
            FileStatus st = FileStatus.OfPath(old, followLinks: false)!.Value;
            Shell.Run("setfattr", "-n", TemporaryFile.ReplacedAttribute, "-v", string.Create(CultureInfo.InvariantCulture, $"{stamp} {st.Size} {st.ModifyTime.Seconds}.{st.ModifyTime.Nanoseconds:D9}"), old);
            FileTime changed = FileStatus.OfPath(old, followLinks: false)!.Value.ChangeTime;
            Shell.Run("setfattr", "-n", TemporaryFile.MarkerAttribute, "-v", stamp, now);
            Shell.Run("setfattr", "-n", TemporaryFile.ReplacedChangeAttribute, "-v", string.Create(CultureInfo.InvariantCulture, $"{stamp} {changed.Seconds}.{changed.Nanoseconds:D9}"), now);
        }
    }
}
