// The S3 XML reader (libexpat): S3's documents read into their fields;
// malformed, truncated and hostile bodies refused with InvalidArgument,
// never a crash, a hang or an expanded entity.
#include "sync/s3/s3_xml.h"

#include <gtest/gtest.h>

#include <string>

namespace tidings::s3 {
namespace {

TEST(S3Xml, ReadsATreeWithEntitiesAndNamespace) {
  auto doc = ParseXml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<Root xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><A>x &amp; y &lt;z&gt;</A>"
      "<B><C>1</C><C>2</C></B><![CDATA[<raw>]]></Root>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Root");
  EXPECT_EQ(doc->ChildText("A"), "x & y <z>");
  ASSERT_NE(doc->Child("B"), nullptr);
  EXPECT_EQ(doc->Child("B")->children.size(), 2u);
  EXPECT_EQ(doc->Child("B")->children[1].text, "2");
  EXPECT_EQ(doc->text, "<raw>");
  EXPECT_EQ(doc->Child("Missing"), nullptr);
  EXPECT_EQ(doc->ChildText("Missing"), "");
}

TEST(S3Xml, ReadsUtf8AndCharacterReferences) {
  auto doc = ParseXml("<K>caf\xC3\xA9 &#x1F4F7; &#233;</K>");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->text, "caf\xC3\xA9 \xF0\x9F\x93\xB7 \xC3\xA9");
}

TEST(S3Xml, RefusesMalformedDocuments) {
  for (const char* body :
       {"", "   ", "not xml", "<a>", "<a></b>", "<a><b></a></b>", "<a></a><b></b>",
        "<a>&bogus;</a>", "<a x=1></a>", "<a>\x01</a>", "<a>\xFF\xFE</a>",
        "<?xml version=\"1.0\"?>", "<Error><Code>NoSuchKey</Code>"}) {
    auto doc = ParseXml(body);
    EXPECT_FALSE(doc.ok()) << "accepted: " << body;
    EXPECT_EQ(doc.status().code(), Code::kInvalidArgument) << body;
    EXPECT_EQ(doc.status().message().rfind("malformed XML", 0), 0u) << doc.status().message();
  }
}

TEST(S3Xml, RefusesEntityExpansionAndExternalEntities) {
  // Billion laughs: refused at the DOCTYPE, before any entity is declared.
  std::string laughs =
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
      "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
      "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
      "<lolz>&lol3;</lolz>";
  auto doc = ParseXml(laughs);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("DOCTYPE"), std::string::npos) << doc.status().message();
  // An external entity (XXE) would read a local file.
  auto xxe = ParseXml(
      "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>");
  ASSERT_FALSE(xxe.ok());
  EXPECT_EQ(xxe.status().message().find("root:"), std::string::npos);
}

TEST(S3Xml, RefusesDeepNestingAndTooManyElements) {
  std::string deep;
  for (int i = 0; i < 17; ++i) deep += "<a>";
  for (int i = 0; i < 17; ++i) deep += "</a>";
  auto doc = ParseXml(deep);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("deeper"), std::string::npos);
  std::string sixteen;
  for (int i = 0; i < 16; ++i) sixteen += "<a>";
  for (int i = 0; i < 16; ++i) sixteen += "</a>";
  EXPECT_TRUE(ParseXml(sixteen).ok());

  std::string wide = "<r>";
  for (int i = 0; i < 200'000; ++i) wide += "<p/>";
  wide += "</r>";
  auto many = ParseXml(wide);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.status().message().find("elements"), std::string::npos);
}

TEST(S3Xml, ErrorBody) {
  aws::AwsErrorBody e;
  ASSERT_TRUE(ParseS3Error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The "
      "specified key does not exist.</Message><Key>k</Key><RequestId>1</RequestId></Error>",
      &e));
  EXPECT_EQ(e.type, "NoSuchKey");
  EXPECT_EQ(e.message, "The specified key does not exist.");
  aws::AwsErrorBody none;
  EXPECT_FALSE(ParseS3Error("", &none));
  EXPECT_FALSE(ParseS3Error("{\"__type\":\"x\"}", &none));
  EXPECT_FALSE(ParseS3Error("<NotError><Code>x</Code></NotError>", &none));
  EXPECT_FALSE(ParseS3Error("<Error><Message>no code</Message></Error>", &none));
  EXPECT_FALSE(ParseS3Error("<Error><Code>x</Code>", &none));
}

TEST(S3Xml, CreateMultipartUpload) {
  auto id = ParseCreateMultipartUpload(
      "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2Fk+SUQ/x=</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "VXBsb2Fk+SUQ/x=");
  EXPECT_FALSE(ParseCreateMultipartUpload("<InitiateMultipartUploadResult/>").ok());
  auto wrong = ParseCreateMultipartUpload("<Other><UploadId>x</UploadId></Other>");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("malformed S3 CreateMultipartUpload"), std::string::npos);
}

TEST(S3Xml, ListParts) {
  auto page = ParseListParts(
      "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
      "<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker>"
      "<MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
      "<Part><PartNumber>1</PartNumber><LastModified>2026-11-24T12:00:00.000Z</LastModified>"
      "<ETag>&quot;aa&quot;</ETag><Size>5242880</Size></Part>"
      "<Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag><Size>7</Size></Part>"
      "</ListPartsResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_marker, 2);
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_EQ(page->parts[0].part_number, 1);
  EXPECT_EQ(page->parts[0].etag, "\"aa\"");
  EXPECT_EQ(page->parts[0].size, 5242880u);
  EXPECT_EQ(page->parts[1].size, 7u);

  auto empty =
      ParseListParts("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->parts.empty());
  EXPECT_FALSE(empty->truncated);

  for (const char* bad : {
           "<ListPartsResult><Part><PartNumber>0</PartNumber><ETag>e</ETag><Size>1</Size></Part>"
           "</ListPartsResult>",
           "<ListPartsResult><Part><PartNumber>10001</PartNumber><ETag>e</ETag><Size>1</Size>"
           "</Part></ListPartsResult>",
           "<ListPartsResult><Part><PartNumber>-1</PartNumber><ETag>e</ETag><Size>1</Size>"
           "</Part></ListPartsResult>",
           "<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>e</ETag><Size>x</Size></Part>"
           "</ListPartsResult>",
           "<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>e</ETag>"
           "<Size>99999999999999999999999</Size></Part></ListPartsResult>",
           "<ListPartsResult><Part><PartNumber>1</PartNumber><Size>1</Size></Part>"
           "</ListPartsResult>",
           "<ListPartsResult><Part><PartNumber> 1</PartNumber><ETag>e</ETag><Size>1</Size></Part>"
           "</ListPartsResult>",
           "<ListPartsResult><IsTruncated>maybe</IsTruncated></ListPartsResult>",
           "<ListPartsResult><IsTruncated>true</IsTruncated></ListPartsResult>",
           "<ListPartsResult><NextPartNumberMarker>x</NextPartNumberMarker></ListPartsResult>",
           "<ListPartsResult>",
           "<Error><Code>NoSuchUpload</Code></Error>",
       }) {
    auto r = ParseListParts(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
}

TEST(S3Xml, ListMultipartUploads) {
  auto page = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker>"
      "<NextKeyMarker>att/2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
      "<MaxUploads>2</MaxUploads><IsTruncated>true</IsTruncated>"
      "<Upload><Key>att/1</Key><UploadId>u1</UploadId><Initiated>2026-11-24T12:00:00.000Z"
      "</Initiated></Upload><Upload><Key>att/2</Key><UploadId>u2</UploadId></Upload>"
      "</ListMultipartUploadsResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_key_marker, "att/2");
  EXPECT_EQ(page->next_upload_id_marker, "u2");
  ASSERT_EQ(page->uploads.size(), 2u);
  EXPECT_EQ(page->uploads[0].key, "att/1");
  EXPECT_EQ(page->uploads[0].initiated, "2026-11-24T12:00:00.000Z");
  EXPECT_EQ(page->uploads[1].upload_id, "u2");
  EXPECT_FALSE(ParseListMultipartUploads("<ListMultipartUploadsResult><Upload><Key>k</Key></Upload>"
                                         "</ListMultipartUploadsResult>")
                   .ok());
  EXPECT_FALSE(
      ParseListMultipartUploads("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                "</ListMultipartUploadsResult>")
          .ok());
}

TEST(S3Xml, CompleteMultipartUploadResultOrError) {
  aws::AwsErrorBody error;
  auto etag = ParseCompleteMultipartUpload(
      "<CompleteMultipartUploadResult><Location>x</Location><Bucket>b</Bucket><Key>k</Key>"
      "<ETag>\"abc-3\"</ETag></CompleteMultipartUploadResult>",
      &error);
  ASSERT_TRUE(etag.ok());
  EXPECT_EQ(*etag, "\"abc-3\"");
  EXPECT_TRUE(error.type.empty());
  // A 200 carrying an error.
  auto failed = ParseCompleteMultipartUpload(
      "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>"
      "</Error>",
      &error);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(*failed, "");
  EXPECT_EQ(error.type, "InternalError");
  aws::AwsErrorBody unused;
  auto moto = ParseCompleteMultipartUpload(
      "<CompleteMultipartUploadResponse><ETag>\"m\"</ETag></CompleteMultipartUploadResponse>",
      &unused);
  ASSERT_TRUE(moto.ok()) << "moto's root name";
  EXPECT_EQ(*moto, "\"m\"");
  EXPECT_FALSE(ParseCompleteMultipartUpload("", &unused).ok());
  EXPECT_FALSE(ParseCompleteMultipartUpload("<CompleteMultipartUploadResult/>", &unused).ok());
}

TEST(S3Xml, CompleteBodyEscapesAndKeepsOrder) {
  std::vector<PartInfo> parts = {{1, "\"a&b\"", 0}, {2, "<x>", 0}};
  EXPECT_EQ(CompleteMultipartUploadBody(parts),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;a&amp;b&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&lt;x&gt;</ETag></Part>"
            "</CompleteMultipartUpload>");
  // What is written reads back.
  auto doc = ParseXml(CompleteMultipartUploadBody(parts));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->children[0].ChildText("ETag"), "\"a&b\"");
  EXPECT_EQ(XmlEscape("'\"&<>"), "&apos;&quot;&amp;&lt;&gt;");
}

}  // namespace
}  // namespace tidings::s3
