namespace Btrfs.Tests.Infrastructure
{
    using System;
    using System.IO;
    using Btrfs.Kernel;

    /// <summary>A btrfs swapfile made the btrfs(5) way and switched on with swapon; swapoff on Dispose.</summary>
    internal sealed class ActiveSwapfile : IDisposable
    {
        internal ActiveSwapfile(string dir)
        {
            Path = System.IO.Path.Combine(dir, "swapfile");
            Shell.Run("truncate", "-s", "0", Path);
            Shell.Try("chattr", "+C", Path); // NOCOW where there is copy on write (btrfs); elsewhere there is none to turn off
            Shell.Run("fallocate", "-l", "32M", Path);
            Shell.Run("chmod", "0600", Path);
            Shell.Run("mkswap", Path);
            Shell.Run("swapon", Path);
        }

        internal string Path { get; }

        public void Dispose() => Shell.Try("swapoff", Path);
    }
}
