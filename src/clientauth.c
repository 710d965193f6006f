/* clientauth.c: see clientauth.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "clientauth.h"

static const struct {
	const char *prefix;
	enum clientauth_kind kind;
	int gen_type;		/* GEN_* for SAN kinds, -1 for CN */
} kinds[] = {
	{ "CN:", CLIENTAUTH_CN, -1 },
	{ "DNS:", CLIENTAUTH_DNS, GEN_DNS },
	{ "URI:", CLIENTAUTH_URI, GEN_URI },
	{ "EMAIL:", CLIENTAUTH_EMAIL, GEN_EMAIL },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

int
clientauth_allow_add(struct allow_list *l, const char *tok, char *err, size_t errlen)
{
	struct clientauth_entry *v;
	char *value;

	for (size_t k = 0; k < N_KINDS; k++) {
		size_t plen = strlen(kinds[k].prefix);
		if (strncasecmp(tok, kinds[k].prefix, plen) != 0)
			continue;
		if (tok[plen] == '\0' || strlen(tok + plen) > 1024) {
			snprintf(err, errlen, "'%s': the identity after %s must be 1 to 1024 "
			    "bytes", tok, kinds[k].prefix);
			return -1;
		}
		/* the copy first: l stays as it was when anything fails */
		if ((value = strdup(tok + plen)) == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if ((v = realloc(l->entries, (l->n_entries + 1) * sizeof(*v))) == NULL) {
			free(value);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		l->entries = v;
		v[l->n_entries].kind = kinds[k].kind;
		v[l->n_entries].value = value;
		l->n_entries++;
		return 0;
	}
	snprintf(err, errlen, "'%s': expected CN:, DNS:, URI: or EMAIL: followed by the "
	    "identity", tok);
	return -1;
}

static int
asn1_equals(const ASN1_STRING *s, const char *want, int nocase)
{
	size_t n = (size_t)ASN1_STRING_length(s);
	const char *p = (const char *)ASN1_STRING_get0_data(s);

	if (n != strlen(want) || memchr(p, '\0', n) != NULL)
		return 0;	/* an embedded NUL never matches */
	return nocase ? strncasecmp(p, want, n) == 0 : memcmp(p, want, n) == 0;
}

int
clientauth_allow_match(const struct allow_list *l, X509 *cert)
{
	GENERAL_NAMES *sans;
	int found = 0;

	if (l == NULL || l->n_entries == 0)
		return 1;
	if (cert == NULL)
		return 0;
	for (size_t i = 0; i < l->n_entries && !found; i++) {
		if (l->entries[i].kind != CLIENTAUTH_CN)
			continue;
		X509_NAME *subj = X509_get_subject_name(cert);
		for (int j = -1; (j = X509_NAME_get_index_by_NID(subj, NID_commonName, j)) >= 0;)
			if (asn1_equals(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, j)),
			    l->entries[i].value, 0))
				found = 1;
	}
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int j = 0; sans && !found && j < sk_GENERAL_NAME_num(sans); j++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, j);
		for (size_t i = 0; i < l->n_entries && !found; i++) {
			const struct clientauth_entry *e = &l->entries[i];
			if (e->kind == CLIENTAUTH_DNS && gn->type == GEN_DNS)
				found = asn1_equals(gn->d.dNSName, e->value, 1);
			else if (e->kind == CLIENTAUTH_URI && gn->type == GEN_URI)
				found = asn1_equals(gn->d.uniformResourceIdentifier, e->value, 0);
			else if (e->kind == CLIENTAUTH_EMAIL && gn->type == GEN_EMAIL)
				found = asn1_equals(gn->d.rfc822Name, e->value, 1);
		}
	}
	GENERAL_NAMES_free(sans);
	return found;
}

void
clientauth_allow_free(struct allow_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n_entries; i++)
		free(l->entries[i].value);
	free(l->entries);
	l->entries = NULL;
	l->n_entries = 0;
}

/* Copy an ASN1 string for a log line: printable ASCII only. */
static void
copy_printable(char *out, size_t outlen, const char *prefix, const ASN1_STRING *s)
{
	size_t n = (size_t)ASN1_STRING_length(s), o;
	const unsigned char *p = ASN1_STRING_get0_data(s);

	o = (size_t)snprintf(out, outlen, "%s", prefix);
	for (size_t i = 0; i < n && o + 1 < outlen; i++)
		out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	if (o < outlen)
		out[o] = '\0';
}

void
clientauth_identity(X509 *cert, char *cn, size_t cnlen, char *san, size_t sanlen)
{
	GENERAL_NAMES *sans;
	int j;

	cn[0] = san[0] = '\0';
	if (cert == NULL)
		return;
	X509_NAME *subj = X509_get_subject_name(cert);
	if ((j = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) >= 0)
		copy_printable(cn, cnlen, "", X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, j)));
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && san[0] == '\0'; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		for (size_t k = 0; k < N_KINDS; k++) {
			if (kinds[k].gen_type != gn->type)
				continue;
			copy_printable(san, sanlen, kinds[k].prefix,
			    gn->type == GEN_DNS ? gn->d.dNSName :
			    gn->type == GEN_URI ? gn->d.uniformResourceIdentifier : gn->d.rfc822Name);
		}
	}
	GENERAL_NAMES_free(sans);
}
