//! The SQL that renders content as the API returns it, and the visibility
//! rule as SQL. `post_sql!` has a Rust twin, `posts::render_new` (tests
//! compare the two).

/// An RFC 3339 timestamp with milliseconds from a unix-ms column
/// (the same text as `domain::content::ts`).
#[macro_export]
macro_rules! ts_sql {
    ($col:literal) => {
        concat!("strftime('%Y-%m-%dT%H:%M:%fZ', ", $col, " / 1000.0, 'unixepoch')")
    };
}

/// The author's public snippet (`u` = users).
#[macro_export]
macro_rules! author_sql {
    () => {
        "json_object('id', u.id, 'username', u.username, 'displayName', u.display_name)"
    };
}

/// One media item (`m` = media).
#[macro_export]
macro_rules! media_sql {
    () => {
        "json_object('id', m.id, 'url', '/api/media/' || m.id, 'contentType', m.content_type, 'size', m.size)"
    };
}

/// A Jes or JesClip as the API returns it (`p` = posts, `u` = its author).
/// Binds: ?1 viewer, ?2 counts shown, ?3 viewer state shown. Keep in step
/// with `routes::posts::render_new` (tests compare the two).
#[macro_export]
macro_rules! post_sql {
    () => {
        concat!(
            "json_patch(json_patch(json_patch(CASE p.kind WHEN 'jes' THEN json_object(",
            "'id', p.id, 'type', 'jes', 'content', p.content, 'visibility', p.visibility, ",
            "'author', ", $crate::author_sql!(), ", ",
            "'media', json((SELECT json_group_array(", $crate::media_sql!(), ") ",
            "FROM (SELECT * FROM media WHERE post_id = p.id ORDER BY position) m)), ",
            "'hashtags', json((SELECT json_group_array(tag) FROM (SELECT tag FROM hashtags WHERE post_id = p.id ORDER BY rowid))), ",
            "'hub', p.hub, 'bounceOf', p.bounce_of, ",
            "'createdAt', ", $crate::ts_sql!("p.created_at"), ", 'updatedAt', ", $crate::ts_sql!("p.updated_at"), ") ",
            "ELSE json_object(",
            "'id', p.id, 'type', 'jesclip', 'caption', p.content, 'visibility', p.visibility, ",
            "'author', ", $crate::author_sql!(), ", ",
            "'video', json((SELECT ", $crate::media_sql!(), " FROM media m WHERE m.post_id = p.id LIMIT 1)), ",
            "'hashtags', json((SELECT json_group_array(tag) FROM (SELECT tag FROM hashtags WHERE post_id = p.id ORDER BY rowid))), ",
            "'createdAt', ", $crate::ts_sql!("p.created_at"), ", 'updatedAt', ", $crate::ts_sql!("p.updated_at"), ") END, ",
            "CASE WHEN p.via_label IS NULL THEN '{}' ELSE json_object('via', json_object('label', p.via_label)) END), ",
            "CASE WHEN ?2 THEN json_object('counts', json_object('likes', p.like_count, 'comments', p.comment_count, ",
            "'bounces', p.bounce_count, 'saves', p.save_count)) ELSE '{}' END), ",
            "CASE WHEN ?3 THEN json_object('viewer', json_object(",
            "'liked', json(CASE WHEN EXISTS (SELECT 1 FROM likes WHERE post_id = p.id AND user_id = ?1) THEN 'true' ELSE 'false' END), ",
            "'saved', json(CASE WHEN EXISTS (SELECT 1 FROM saves WHERE post_id = p.id AND user_id = ?1) THEN 'true' ELSE 'false' END))) ",
            "ELSE '{}' END)"
        )
    };
}

/// The visibility rule of `domain::content::may_see` for list queries
/// (`p` = posts, `u` = author, ?1 = the caller's account or NULL).
#[macro_export]
macro_rules! visible_sql {
    () => {
        concat!(
            "p.deleted_at IS NULL AND u.deleted_at IS NULL AND (p.visibility = 'PUBLIC' OR p.author_id = ?1 ",
            "OR (p.visibility = 'FOLLOWERS' AND EXISTS (SELECT 1 FROM follows fv WHERE fv.follower_id = ?1 AND fv.followee_id = p.author_id)))"
        )
    };
}

/// `post_sql!` and `visible_sql!` as values, for queries built at run time
/// (one copy of the text in the binary however many lists use it).
pub const POST_JSON: &str = crate::post_sql!();
pub const VISIBLE: &str = crate::visible_sql!();
