using VddkBuild.TestSupport.Infrastructure;

namespace VddkBuild.IntegrationTests.Infrastructure;

/// <summary>One Ceph cluster for every test class marked <c>[Collection(CephRgw.CollectionName)]</c> (xunit needs the definition in the test assembly).</summary>
[CollectionDefinition(CephRgw.CollectionName)]
public sealed class CephRgwCollection : ICollectionFixture<CephRgw>;
