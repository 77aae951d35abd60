namespace Btrfs.Tests
{
    using System;
    using System.IO;
    using System.Linq;
    using System.Management.Automation;
    using System.Reflection;
    using Btrfs.Kernel;
    using Btrfs.Tests.Infrastructure;
    using Xunit;

    /// <summary>The layering the tree promises: Interop (declarations) → Kernel (typed, checked calls) → Core (decisions, no PowerShell, no syscalls) → Commands (thin, one sealed cmdlet per file).</summary>
    public class ArchitectureTests
    {
        private static readonly Assembly Module = typeof(Btrfs.Core.FileExtent).Assembly;

        [Fact]
        public void CoreAndInteropUseNoPowerShellTypes()
        {
            Assembly sma = typeof(PSObject).Assembly;
            foreach (Type t in Module.GetTypes().Where(t => t.Namespace is "Btrfs.Core" or "Btrfs.Interop" or "Btrfs.Kernel"))
            {
                const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
                var used = t.GetFields(all).Select(f => f.FieldType)
                    .Concat(t.GetProperties(all).Select(p => p.PropertyType))
                    .Concat(t.GetMethods(all).SelectMany(m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType)))
                    .Append(t.BaseType ?? typeof(object))
                    .Concat(t.GetInterfaces());
                Assert.DoesNotContain(used, u => u.Assembly == sma);
            }
        }

        [Fact]
        public void CoreSourcesDoNotMentionPowerShell()
        {
            string[] files = Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "Btrfs", "Core"), "*.cs", SearchOption.AllDirectories)
                .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "Btrfs", "Interop"), "*.cs", SearchOption.AllDirectories))
                .Concat(Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "Btrfs", "Kernel"), "*.cs", SearchOption.AllDirectories))
                .ToArray();
            Assert.True(files.Length > 10, "the Core, Kernel and Interop sources were not found");
            foreach (string file in files)
            {
                Assert.DoesNotContain("System.Management.Automation", File.ReadAllText(file));
                Assert.DoesNotContain("using Btrfs.Commands", File.ReadAllText(file));
            }
        }

        [Fact]
        public void OnlyInteropAndKernelTouchSyscallsPointersAndErrno()
        {
            // Core reads as policy: the marshalling, unsafe code and errno capture are the Kernel layer's.
            string src = Path.Combine(RepoPaths.Root, "src", "Btrfs");
            string[] outside = Directory.GetFiles(src, "*.cs", SearchOption.AllDirectories)
                .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
                .Where(f => !f.StartsWith(Path.Combine(src, "Interop") + "/", StringComparison.Ordinal) && !f.StartsWith(Path.Combine(src, "Kernel") + "/", StringComparison.Ordinal))
                .ToArray();
            Assert.Contains(outside, f => f.Contains("/Core/", StringComparison.Ordinal));
            Assert.Contains(outside, f => f.Contains("/Commands/", StringComparison.Ordinal));
            var pattern = new System.Text.RegularExpressions.Regex(@"\bLibc\.|\bunsafe\b|\bstackalloc\b|GetLastPInvokeError|GetLastWin32Error|\bLibraryImport\b|\bDllImport\b|\bfixed\s*\(|\bMarshal\.|\bErrno\.(Last|Failure)\b");
            foreach (string file in outside)
            {
                // Code only: comments may name the calls they explain.
                string code = string.Join("\n", File.ReadAllLines(file).Select(l => l.IndexOf("//", StringComparison.Ordinal) is int c and >= 0 ? l[..c] : l));
                Assert.True(!pattern.IsMatch(code), $"{Path.GetRelativePath(src, file)}: '{pattern.Match(code).Value}' belongs in Interop or Kernel");
            }

            // And the Kernel layer does not decide: it does not use Core's policy classes.
            foreach (string file in Directory.GetFiles(Path.Combine(src, "Kernel"), "*.cs"))
            {
                Assert.DoesNotMatch(@"\b(FileGuards|SafeRewrite|Defragmenter|ReflinkCopy|NoCowConversion|TreeWalker)\b", File.ReadAllText(file));
            }
        }

        [Fact]
        public void CoreIsGroupedByCapabilityInFolders()
        {
            // A newcomer finds a feature in one place: Core/<Capability>/, never loose files in Core/.
            string core = Path.Combine(RepoPaths.Root, "src", "Btrfs", "Core");
            Assert.Empty(Directory.GetFiles(core, "*.cs"));
            Assert.Contains("Files", Directory.GetDirectories(core).Select(Path.GetFileName));
            Assert.All(Module.GetTypes().Where(t => t.Namespace?.StartsWith("Btrfs.Core", StringComparison.Ordinal) == true), t => Assert.Equal("Btrfs.Core", t.Namespace));
        }

        [Fact]
        public void EachCmdletIsSealedAndAloneInItsFile()
        {
            var cmdlets = Module.GetTypes().Where(t => typeof(PSCmdlet).IsAssignableFrom(t) && !t.IsAbstract).ToList();
            Assert.NotEmpty(cmdlets);
            foreach (Type t in cmdlets)
            {
                Assert.True(t.IsSealed, $"{t.Name} is not sealed");
                Assert.Equal("Btrfs.Commands", t.Namespace);
                string file = Path.Combine(RepoPaths.Root, "src", "Btrfs", "Commands", t.Name + ".cs");
                Assert.True(File.Exists(file), $"{t.Name} should live in {file}");
                Assert.Single(System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(file), @"\bclass\s+\w+"));
            }
        }

        [Fact]
        public void NothingWritesToTheConsole()
        {
            foreach (string file in Directory.GetFiles(Path.Combine(RepoPaths.Root, "src", "Btrfs"), "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/")))
            {
                Assert.DoesNotMatch(@"Console\.(Write|Read)", File.ReadAllText(file));
            }
        }
    }
}
